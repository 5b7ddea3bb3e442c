/*
 * npm run soak [-- --seconds N --clients N --seed N --kill-every-ms N --data DIR]
 * The correctness soak (issue 7): prints a table, writes loadtest/reports/soak-<time>.json
 * and exits 1 when anything the CLI reported as done was lost.
 */
import { formatReport, runSoak } from './soak/index.js';
import { writeReport } from './report.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function numberOption(name: string, fallback: number): number {
  const v = option(name);
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, got '${v ?? ''}'`);
  return n;
}

async function main(): Promise<void> {
  const seconds = numberOption('seconds', 180);
  const clients = numberOption('clients', 4);
  const seed = numberOption('seed', Math.floor(Math.random() * 2 ** 31));
  const killEveryMs = numberOption('kill-every-ms', 5500);
  const dataDir = option('data');
  console.error(`soak: ${seconds} s, ${clients} clients, a kill every ~${killEveryMs} ms, seed ${seed}`);
  const report = await runSoak({ seconds, clients, seed, killEveryMs, ...(dataDir ? { dataDir } : {}), log: (l) => console.error(l) });
  console.log(formatReport(report));
  const file = writeReport('soak', { node: process.version, date: new Date().toISOString(), report });
  console.error(`report: ${file}`);
  process.exitCode = report.losses.length > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});

/** Where every benchmark and the soak leave their JSON report: loadtest/reports/NAME-TIME.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `doc` as NAME-<ISO time>.json under loadtest/reports (created when missing); returns the path. */
export function writeReport(name: string, doc: unknown): string {
  const dir = join(__dirname, '..', '..', 'reports');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

/** A benchmark's measurements: the JSON results, the table rows, and `record` adding to both. */
export function resultRecorder(): {
  results: Record<string, number | string>;
  rows: [string, string, string][];
  record: (name: string, value: number, unit: string, note?: string) => void;
} {
  const results: Record<string, number | string> = {};
  const rows: [string, string, string][] = [];
  const record = (name: string, value: number, unit: string, note = ''): void => {
    results[`${name} (${unit})`] = Math.round(value * 100) / 100;
    rows.push([name, `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`, note]);
    console.error(`  ${name}: ${value.toFixed(2)} ${unit} ${note}`);
  };
  return { results, rows, record };
}

/** Wall seconds `fn` takes. */
export function seconds(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

/** Wall seconds `fn` takes to settle. */
export async function secondsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

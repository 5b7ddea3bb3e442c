/*
 * npm run bench:transfer — import and export of a realistic sparse ext4 image through the CLI
 * and a real node process, beside the tools a user would compare with, on the same file in
 * the same run: `cp --sparse=always` (a local copy that skips holes), `restic backup` and
 * `restic restore` (a deduplicating backup of the same image). Import is timed with
 * SEEK_DATA and with it turned off (VMFERRY_SEEK_DATA=off), which reads the holes.
 * Prints a table and writes loadtest/reports/bench-transfer-<time>.json.
 *   -- --quick: a 1 GiB disk with 96 MiB of files instead of 8 GiB with 768 MiB.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExtImage, makeContentTree, runCli, startNodeProcess } from '@vmferry/testkit';
import { resultRecorder, seconds, secondsAsync, writeReport } from './report.js';

const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const DISK_MIB = quick ? 1024 : 8192;
const CONTENT_MIB = quick ? 96 : 768;
const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-transfer-'));
const PATH = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;
const { results, rows, record } = resultRecorder();
const has = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH } });
    return true;
  } catch {
    return false;
  }
};
const allocated = (file: string): number => statSync(file).blocks * 512;

async function cli(node: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const r = await runCli(node, ['--json', ...args], env);
  if (r.code !== 0) throw new Error(`vmferry ${args.join(' ')} failed: ${r.stderr}`);
}

async function main(): Promise<void> {
  console.error(`vmferry transfer benchmark (work dir ${work}, ${DISK_MIB} MiB disk, ${CONTENT_MIB} MiB of files)`);
  const content = join(work, 'content');
  makeContentTree(content, 'transfer', CONTENT_MIB);
  const image = join(work, 'vm.img');
  buildExtImage({ path: image, diskMiB: DISK_MIB, startSector: 2048, contentDir: content, workDir: join(work, 'fs') });
  rmSync(content, { recursive: true, force: true });
  const data = allocated(image);
  record('image: apparent size', DISK_MIB, 'MiB');
  record('image: data (allocated)', data / MiB, 'MiB');
  // Every tool below reads the image from the page cache: cp warms it.
  const copy = join(work, 'copy.img');
  execFileSync('cp', ['--sparse=always', image, copy]);
  rmSync(copy);
  const tcp = seconds(() => execFileSync('cp', ['--sparse=always', image, copy]));
  record('cp --sparse=always', data / MiB / tcp, 'MiB/s', `${tcp.toFixed(2)} s`);
  rmSync(copy);

  const node = await startNodeProcess({ dataDir: join(work, 'node') });
  let ti = 0;
  try {
    // What every command below pays before its first byte: node start-up, modules, connect.
    const t0 = await secondsAsync(() => cli(node.address, ['vm', 'list']));
    record('vmferry CLI start-up (vm list)', t0, 's', 'included in every vmferry time below');
    ti = await secondsAsync(() => cli(node.address, ['vm', 'import', 'seek', image]));
    record('vmferry import (SEEK_DATA)', data / MiB / ti, 'MiB/s', `${ti.toFixed(2)} s; ${(DISK_MIB / ti).toFixed(0)} MiB/s of disk`);
    // A second import of the same bytes: every chunk is a duplicate, so this is the read and wire path.
    const tf = await secondsAsync(() => cli(node.address, ['vm', 'import', 'noseek', image], { VMFERRY_SEEK_DATA: 'off' }));
    record('vmferry import, SEEK_DATA off (reads holes)', data / MiB / tf, 'MiB/s', `${tf.toFixed(2)} s`);
    const td = await secondsAsync(() => cli(node.address, ['vm', 'import', 'dup', image]));
    record('vmferry import again (all duplicates)', data / MiB / td, 'MiB/s', `${td.toFixed(2)} s`);

    const out = join(work, 'export.img');
    await cli(node.address, ['disk', 'export', 'seek', '0', out]);
    rmSync(out);
    // The node's store is now in the page cache too.
    const te = await secondsAsync(() => cli(node.address, ['disk', 'export', 'seek', '0', out]));
    const outData = allocated(out);
    record('vmferry export (warm)', data / MiB / te, 'MiB/s', `${te.toFixed(2)} s; output allocates ${(outData / MiB).toFixed(0)} MiB`);
    rmSync(out);
  } finally {
    await node.stop();
  }

  if (has('restic')) {
    const repo = join(work, 'restic');
    const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, PATH };
    execFileSync('restic', ['init', '-q'], { env });
    const tb = seconds(() => execFileSync('restic', ['backup', '-q', image], { env }));
    record('restic backup', data / MiB / tb, 'MiB/s', `${tb.toFixed(2)} s; vmferry import/restic = ${(ti / tb).toFixed(2)}x time`);
    const target = join(work, 'restored');
    const tr = seconds(() => execFileSync('restic', ['restore', '-q', 'latest', '--target', target], { env }));
    record('restic restore', data / MiB / tr, 'MiB/s', `${tr.toFixed(2)} s`);
  } else {
    results['restic'] = 'not installed (npm run bench:transfer installs it)';
    console.error('  restic: not installed');
  }

  // The cores may be shared: a load above their count slows every tool above alike.
  record('load average (1 min) at the end', loadavg()[0] ?? 0, '');
  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${'measure'.padEnd(w)}  ${'result'.padStart(v)}  note`);
  for (const [name, value, note] of rows) console.log(`${name.padEnd(w)}  ${value.padStart(v)}  ${note}`);
  console.log("MiB/s are of the image's data (allocated bytes), for every tool");
  const file = writeReport('bench-transfer', { node: process.version, date: new Date().toISOString(), diskMiB: DISK_MIB, contentMiB: CONTENT_MIB, results });
  console.log(`\nreport: ${file}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    rmSync(work, { recursive: true, force: true });
  });

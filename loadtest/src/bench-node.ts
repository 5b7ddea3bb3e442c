/*
 * npm run bench:node — storage node benchmark with native baselines on the same bytes.
 * Prints a table and writes loadtest/reports/bench-node-<time>.json.
 *
 * Ingest, export and the 16 GiB import run against a real node process through the CLI
 * (client → gRPC → store, the path users take). Snapshot latency and clone time run on the
 * engine in-process, so they measure the storage work itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { StorageEngine } from '@vmferry/storage-node';
import { buildExtImage, cliJson, makeContentTree, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { resultRecorder, seconds, secondsAsync, writeReport } from './report.js';

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-'));
const PATH = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;
const { results, rows, record } = resultRecorder();

/** Compressible, non-repeating data (log-like text), deterministic. */
function compressibleFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  let written = 0;
  let i = 0;
  while (written < bytes) {
    const lines: string[] = [];
    for (let k = 0; k < 8192; k++, i++) {
      lines.push(`${i} ${createHash('md5').update(String(i)).digest('hex').slice(0, 12)} GET /api/v1/items/${(i * 7919) % 100003} 200 ${i % 977}ms\n`);
    }
    const buf = Buffer.from(lines.join(''));
    writeSync(fd, buf, 0, Math.min(buf.length, bytes - written));
    written += Math.min(buf.length, bytes - written);
  }
  closeSync(fd);
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function ingest(node: NodeProcess): Promise<void> {
  const size = 1024 * MiB;
  const unique = join(work, 'unique.img');
  compressibleFile(unique, size);
  const t1 = await secondsAsync(() => cliJson(node.address, ['vm', 'import', 'u1', unique]));
  record('ingest, unique compressible (1 GiB)', size / MiB / t1, 'MiB/s');
  const t2 = await secondsAsync(() => cliJson(node.address, ['vm', 'import', 'u2', unique]));
  record('ingest, duplicate re-ingest (1 GiB)', size / MiB / t2, 'MiB/s');
  const zeros = join(work, 'zeros.img');
  execFileSync('truncate', ['-s', '4G', zeros]);
  const t3 = await secondsAsync(() => cliJson(node.address, ['vm', 'import', 'z', zeros]));
  record('ingest, zeros (4 GiB)', (4 * 1024) / t3, 'MiB/s');

  const zt = seconds(() => execFileSync('zstd', ['-3', '-T1', '-q', '-f', '-o', join(work, 'u.zst'), unique]));
  record('baseline: zstd -3 single-threaded, same bytes', size / MiB / zt, 'MiB/s', `vmferry/zstd = ${(zt / t1).toFixed(2)}x`);
  const bt = seconds(() => execFileSync('b3sum', ['--num-threads', '1', unique], { env: { ...process.env, PATH } }));
  record('baseline: b3sum single-threaded, same bytes', size / MiB / bt, 'MiB/s');

  const out = join(work, 'export.img');
  const te = await secondsAsync(() => cliJson(node.address, ['disk', 'export', 'u1', '0', out]));
  record('export (1 GiB compressible)', size / MiB / te, 'MiB/s');
  rmSync(out, { force: true });
  rmSync(unique, { force: true });
}

async function realistic(node: NodeProcess): Promise<void> {
  const content = join(work, 'content');
  makeContentTree(content, 'realistic', 192);
  const image = join(work, 'vm.img');
  buildExtImage({ path: image, diskMiB: 1024, startSector: 2048, contentDir: content, workDir: join(work, 'fs') });
  const before = (await cliJson<{ storedBytes: number }>(node.address, ['stats'])).storedBytes;
  const t = await secondsAsync(() => cliJson(node.address, ['vm', 'import', 'real', image]));
  const ours = (await cliJson<{ storedBytes: number }>(node.address, ['stats'])).storedBytes - before;
  record('realistic ext4 image (1 GiB disk): import', t, 's');
  record('realistic ext4 image: stored', ours / MiB, 'MiB');

  const repo = join(work, 'restic');
  const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, PATH };
  execFileSync('restic', ['init', '-q'], { env });
  const rt = seconds(() => execFileSync('restic', ['backup', '-q', image], { env }));
  const rbytes = Number(execFileSync('du', ['-sb', repo]).toString().split('\t')[0]);
  record('baseline: restic backup, same image', rt, 's', `vmferry/restic time = ${(t / rt).toFixed(2)}x`);
  record('baseline: restic repository', rbytes / MiB, 'MiB', `vmferry/restic bytes = ${(ours / rbytes).toFixed(2)}x`);
}

async function snapshotsAndClones(): Promise<void> {
  const engine = await StorageEngine.open({ dataDir: join(work, 'engine') });
  try {
    await engine.createVm({ name: 'big', disks: [{ size: 1024 ** 4 }] });
    const block = Buffer.alloc(64 * 1024, 7);
    const blocks = 1024 ** 4 / (64 * 1024);
    const dirty = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i += 256) {
        await Promise.all(
          Array.from({ length: Math.min(256, n - i) }, async () => {
            const w = engine.openWriter('big', 0, Math.floor(Math.random() * blocks) * 64 * 1024);
            await w.write(block);
            await w.end();
          }),
        );
      }
    };
    await engine.createSnapshot('big');
    for (const n of [0, 1000, 100000]) {
      await dirty(n);
      const t = await secondsAsync(() => engine.createSnapshot('big'));
      record(`snapshot, 1 TiB vDisk, ${n} dirty blocks`, t * 1000, 'ms');
    }
    for (let i = 0; i < 5; i++) await engine.createSnapshot('big');
    const t0 = await secondsAsync(() => engine.createSnapshot('big'));
    record('snapshot, 1 TiB vDisk, nothing dirty, 10th', t0 * 1000, 'ms');
    const tc = await secondsAsync(() => engine.clone('big', 'vdi', 500));
    record('500 clones (one call, includes a snapshot)', tc, 's');
  } finally {
    await engine.close();
  }
}

async function bigImport(): Promise<void> {
  const node = await startNodeProcess({ dataDir: join(work, 'node16') });
  try {
    const img = join(work, 'big16.img');
    const fd = openSync(img, 'w');
    ftruncateSync(fd, 16 * 1024 * MiB);
    const chunk = Buffer.alloc(4 * MiB);
    for (let i = 0; i < 256; i++) {
      for (let k = 0; k < chunk.length; k += 4096) chunk.writeUInt32LE(i * 1_000_003 + k, k);
      writeSync(fd, chunk, 0, chunk.length, i * 64 * MiB);
    }
    closeSync(fd);
    const t = await secondsAsync(() => cliJson(node.address, ['vm', 'import', 'big16', img]));
    record('import 16 GiB image (1 GiB data): time', t, 's');
    record('import 16 GiB image: node peak RSS', peakRssMiB(node.child.pid ?? 0), 'MiB');
    rmSync(img, { force: true });
  } finally {
    await node.stop();
  }
}

async function main(): Promise<void> {
  console.error(`vmferry storage node benchmark (work dir ${work})`);
  const node = await startNodeProcess({ dataDir: join(work, 'node') });
  try {
    await ingest(node);
    await realistic(node);
  } finally {
    await node.stop();
  }
  await snapshotsAndClones();
  await bigImport();

  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${'measure'.padEnd(w)}  ${'result'.padStart(v)}  note`);
  for (const [name, value, note] of rows) console.log(`${name.padEnd(w)}  ${value.padStart(v)}  ${note}`);
  const file = writeReport('bench-node', { node: process.version, date: new Date().toISOString(), results });
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

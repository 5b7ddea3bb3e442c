/*
 * npm run bench:nbd [-- --quick] — vDisks over NBD, measured with fio's nbd engine against a
 * real storage node and, in the same run on the same filesystem, against qemu-nbd serving a
 * raw file and qemu-nbd serving a qcow2 overlay on that raw file (how plain QEMU clones VMs).
 * All three serve the same bytes: one random (incompressible) image, imported into vmferry
 * and cloned (gold@s1 → bench), copied for raw, used as the qcow2 backing file.
 *
 * Measured: 4 KiB random read/write at QD1 and QD16, 4 KiB random write with a flush every 32
 * writes (QD1: at higher depths fio's --fsync count drifts with timing), 1 MiB sequential read
 * and write (QD4); bytes the server process wrote (/proc/PID/io wchar, from the job's start
 * until the server has gone quiet after it) per byte fio wrote; a fresh clone of a real ext4
 * image read end to end vs its gold image; the longest write latency while a snapshot is taken
 * every second under 4 KiB QD16 random writes, vs the same run without snapshots; and the time
 * from `clone --count N` returning to all N exports answering a 4 KiB read.
 *
 * Prints a table with ratios; writes loadtest/reports/bench-nbd-*.json. RUNTIME_S (default 10,
 * 3 with --quick), DISK_MIB (1024, 256), EXT4_MIB (content, 256, 64) and CLONES (100).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectStorageNode } from '@vmferry/grpc-edge';
import { buildExtImage, cliJson, makeContentTree, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { runFio, type FioJob, type FioResult } from './nbd/fio.js';
import { probeRead } from './nbd/nbd-probe.js';
import { startQemuNbd, type QemuNbd } from './nbd/qemu-nbd.js';
import { writeReport } from './report.js';

const MiB = 1024 * 1024;
const QUICK = process.argv.includes('--quick');
const RUNTIME_S = Number(process.env['RUNTIME_S'] ?? (QUICK ? 3 : 10));
const DISK = Number(process.env['DISK_MIB'] ?? (QUICK ? 256 : 1024)) * MiB;
const EXT4_CONTENT_MIB = Number(process.env['EXT4_MIB'] ?? (QUICK ? 64 : 256));
const CLONES = Number(process.env['CLONES'] ?? 100);
const log = (s: string): void => console.error(`  ${s}`);

interface Server {
  readonly name: string;
  readonly uri: string;
  readonly pid: number;
}

interface Workload {
  readonly key: string;
  readonly label: string;
  readonly rw: FioJob['rw'];
  readonly bs: string;
  readonly iodepth: number;
  readonly fsyncEvery?: number;
  /** What the table shows: IOPS for 4 KiB, MB/s for 1 MiB. */
  readonly unit: 'IOPS' | 'MB/s';
}

const WORKLOADS: readonly Workload[] = [
  { key: 'randread-4k-qd1', label: '4K rand read QD1', rw: 'randread', bs: '4k', iodepth: 1, unit: 'IOPS' },
  { key: 'randread-4k-qd16', label: '4K rand read QD16', rw: 'randread', bs: '4k', iodepth: 16, unit: 'IOPS' },
  { key: 'read-1m-qd4', label: '1M seq read QD4', rw: 'read', bs: '1m', iodepth: 4, unit: 'MB/s' },
  { key: 'randwrite-4k-qd1', label: '4K rand write QD1', rw: 'randwrite', bs: '4k', iodepth: 1, unit: 'IOPS' },
  { key: 'randwrite-4k-qd16', label: '4K rand write QD16', rw: 'randwrite', bs: '4k', iodepth: 16, unit: 'IOPS' },
  { key: 'randwrite-4k-qd1-flush32', label: '4K rand write QD1 +flush/32', rw: 'randwrite', bs: '4k', iodepth: 1, fsyncEvery: 32, unit: 'IOPS' },
  { key: 'write-1m-qd4', label: '1M seq write QD4', rw: 'write', bs: '1m', iodepth: 4, unit: 'MB/s' },
];

interface Measured {
  readonly fio: FioResult;
  /**
   * Writes only: bytes the server process handed to write syscalls (/proc/PID/io wchar: its
   * files, plus its NBD replies, 16 bytes per write) per byte fio wrote. The primary measure:
   * write_bytes (what reached the block layer) is charged per page-cache folio on this kernel,
   * so on ext4 with large folios a 4 KiB write into a clean 64 KiB folio counts 64 KiB, and a
   * write into an already-dirty folio counts nothing; kept alongside as writeAmpBlock.
   */
  readonly writeAmp?: number;
  readonly writeAmpBlock?: number;
  /** The wchar bytes writeAmp divides. */
  readonly written?: number;
}

interface ProcIo {
  readonly wchar: number;
  readonly writeBytes: number;
}

/** The server's /proc/PID/io counters (all its threads: RocksDB's background work included). */
function procIo(pid: number): ProcIo {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    if (!m?.[1]) throw new Error(`no ${name} in /proc/${pid}/io`);
    return Number(m[1]);
  };
  return { wchar: field('wchar'), writeBytes: field('write_bytes') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the server's wchar stops moving for a second (at most 15 s), so background work
 * a job starts (RocksDB memtable flushes, compactions) is charged to that job, not the next.
 */
async function quiesce(pid: number): Promise<void> {
  const deadline = performance.now() + 15_000;
  let last = procIo(pid).wchar;
  let still = 0;
  while (still < 4 && performance.now() < deadline) {
    await sleep(250);
    const now = procIo(pid).wchar;
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

/** One fio job on one server; for writes, the server's write counters from the job's start until it has gone quiet after. */
async function measure(server: Server, w: Workload, runtimeS = RUNTIME_S): Promise<Measured> {
  const writes = w.rw === 'randwrite' || w.rw === 'write';
  if (writes) await quiesce(server.pid);
  const before = procIo(server.pid);
  const fio = await runFio({
    uri: server.uri,
    rw: w.rw,
    bs: w.bs,
    iodepth: w.iodepth,
    size: DISK,
    runtimeS,
    ...(w.fsyncEvery ? { fsyncEvery: w.fsyncEvery } : {}),
  });
  if (!writes) return { fio };
  await quiesce(server.pid);
  const after = procIo(server.pid);
  const written = after.wchar - before.wchar;
  return { fio, written, writeAmp: written / fio.bytes, writeAmpBlock: (after.writeBytes - before.writeBytes) / fio.bytes };
}

const value = (w: Workload, m: Measured): number => (w.unit === 'IOPS' ? m.fio.iops : m.fio.bytesPerSecond / 1e6);

/** A random (incompressible, non-zero) raw image of `bytes`. */
function randomImage(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  for (let off = 0; off < bytes; off += 4 * MiB) writeSync(fd, randomBytes(Math.min(4 * MiB, bytes - off)));
  closeSync(fd);
}

/** 1 MiB sequential reads (QD4) over the whole disk, holes included, one pass or for runtimeS seconds (MB/s). */
async function fullReadMBps(uri: string, size: number, runtimeS?: number): Promise<number> {
  const r = await runFio({ uri, rw: 'read', bs: '1m', iodepth: 4, size, ...(runtimeS === undefined ? {} : { runtimeS }) });
  return r.bytesPerSecond / 1e6;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-nbd-'));
  const fsType = execFileSync('df', ['--output=fstype,source', work]).toString().trim().split('\n').pop()?.trim() ?? '?';
  console.error(`vmferry NBD benchmark: fio ${RUNTIME_S} s per job, ${DISK / MiB} MiB disks, work dir ${work} (${fsType})`);
  let node: NodeProcess | undefined;
  const qemus: QemuNbd[] = [];
  const client = { close: (): void => undefined };
  try {
    // One image, three servers.
    const base = join(work, 'base.raw');
    randomImage(base, DISK);
    const raw = join(work, 'copy.raw');
    copyFileSync(base, raw);
    const overlay = join(work, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);

    node = await startNodeProcess({ dataDir: join(work, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0'] });
    const nbd = node.nbdAddress;
    if (!nbd) throw new Error(`the node printed no NBD address:\n${node.log()}`);
    const [nbdHost = '127.0.0.1', nbdPortText = '0'] = nbd.split(':');
    const nbdPort = Number(nbdPortText);
    log('importing the image into vmferry');
    await cliJson(node.address, ['vm', 'import', 'gold', base]);
    await cliJson(node.address, ['snapshot', 'create', 'gold', '--label', 's1']);
    await cliJson(node.address, ['clone', 'gold@s1', 'bench']);
    const qraw = await startQemuNbd(raw, 'raw', 'disk');
    qemus.push(qraw);
    const qcow = await startQemuNbd(overlay, 'qcow2', 'disk');
    qemus.push(qcow);
    const servers: Server[] = [
      { name: 'vmferry', uri: `nbd://${nbd}/bench/0`, pid: node.child.pid ?? 0 },
      { name: 'qemu-nbd raw', uri: qraw.uri, pid: qraw.child.pid ?? 0 },
      { name: 'qemu-nbd qcow2', uri: qcow.uri, pid: qcow.child.pid ?? 0 },
    ];

    // Reads are real: every server answers with the image's bytes, not zeros.
    const at = Math.floor(DISK / 3 / 4096) * 4096;
    const want = Buffer.alloc(4096);
    const fd = openSync(base, 'r');
    readSync(fd, want, 0, 4096, at);
    closeSync(fd);
    for (const s of servers) {
      const u = new URL(s.uri);
      const got = await probeRead(u.hostname, Number(u.port), decodeURIComponent(u.pathname.slice(1)), at);
      if (!got.equals(want)) throw new Error(`${s.name} does not read back the image's bytes at ${at}`);
    }

    // Each workload on each server in turn, so noise on this shared machine lands on all three alike.
    const results: Record<string, Record<string, Measured>> = {};
    for (const w of WORKLOADS) {
      const row: Record<string, Measured> = {};
      for (const s of servers) {
        row[s.name] = await measure(s, w);
        log(`${w.label} on ${s.name}: ${value(w, row[s.name] as Measured).toFixed(0)} ${w.unit}`);
      }
      results[w.key] = row;
    }

    // Snapshots every second under 4 KiB QD16 random writes, vs the same run without.
    const vm = servers[0] as Server;
    const stallJob: FioJob = { uri: vm.uri, rw: 'randwrite', bs: '4k', iodepth: 16, size: DISK, runtimeS: RUNTIME_S };
    await quiesce(vm.pid);
    const quiet = await runFio(stallJob);
    await quiesce(vm.pid);
    const grpc = connectStorageNode(node.address);
    client.close = () => grpc.close();
    const snapMs: number[] = [];
    let snapping = true;
    const loop = (async () => {
      await sleep(500);
      while (snapping) {
        const t = performance.now();
        await grpc.createSnapshot({ vm: 'bench', label: '' });
        const ms = performance.now() - t;
        snapMs.push(ms);
        await sleep(Math.max(0, 1000 - ms));
      }
    })();
    const snapped = await runFio(stallJob);
    snapping = false;
    await loop;
    log(
      `write latency max without snapshots ${(quiet.clat.maxUs / 1000).toFixed(1)} ms, with ${snapMs.length} snapshots ${(snapped.clat.maxUs / 1000).toFixed(1)} ms`,
    );

    // A real ext4 image: gold vs a fresh clone, whole-disk sequential reads; qemu-nbd raw vs a qcow2 overlay as the peer.
    const content = join(work, 'content');
    makeContentTree(content, 'bench-nbd', EXT4_CONTENT_MIB);
    const ext4 = join(work, 'ext4.raw');
    const ext4MiB = Math.max(128, 2 ** Math.ceil(Math.log2(EXT4_CONTENT_MIB * 1.6)));
    buildExtImage({ path: ext4, diskMiB: ext4MiB, startSector: 2048, contentDir: content, workDir: join(work, 'fs') });
    rmSync(content, { recursive: true, force: true });
    const ext4Size = ext4MiB * MiB;
    const ext4Used = Number(execFileSync('du', ['-B1', ext4]).toString().split('\t')[0]);
    log(`ext4 image ${ext4MiB} MiB (${(ext4Used / MiB).toFixed(0)} MiB allocated); importing`);
    await cliJson(node.address, ['vm', 'import', 'os', ext4]);
    await cliJson(node.address, ['snapshot', 'create', 'os', '--label', 's1']);
    await cliJson(node.address, ['clone', 'os@s1', 'fresh']);
    const ext4Overlay = join(work, 'ext4-overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', ext4, '-F', 'raw', ext4Overlay]);
    const qext = await startQemuNbd(ext4, 'raw', 'os');
    qemus.push(qext);
    const qextOv = await startQemuNbd(ext4Overlay, 'qcow2', 'fresh');
    qemus.push(qextOv);
    const pairs = {
      vmferry: { gold: `nbd://${nbd}/os/0`, clone: `nbd://${nbd}/fresh/0` },
      'qemu-nbd': { gold: qext.uri, clone: qextOv.uri },
    };
    // Whole-disk passes, repeated for readS seconds: one pass of a small image is over too soon to time.
    const readS = Math.max(2, Math.round(RUNTIME_S / 2));
    const cloneRead: Record<string, { goldMBps: number; cloneMBps: number }> = {};
    for (const [name, p] of Object.entries(pairs)) {
      let goldMBps = 0;
      let cloneMBps = 0;
      await fullReadMBps(p.gold, ext4Size); // warm: every read after this one is from the page cache, for both
      for (let i = 0; i < 2; i++) {
        goldMBps = Math.max(goldMBps, await fullReadMBps(p.gold, ext4Size, readS));
        cloneMBps = Math.max(cloneMBps, await fullReadMBps(p.clone, ext4Size, readS));
      }
      cloneRead[name] = { goldMBps, cloneMBps };
      log(`${name}: gold ${goldMBps.toFixed(0)} MB/s, fresh clone ${cloneMBps.toFixed(0)} MB/s`);
    }

    // Clone fan-out: `clone --count N` returns, then every export must answer a 4 KiB read.
    const head = readFileSync(ext4).subarray(0, 4096);
    const t0 = performance.now();
    const cloned = await cliJson<{ vms: { name: string }[]; seconds: number }>(node.address, ['clone', 'os@s1', 'desk', '--count', String(CLONES)]);
    const returned = performance.now();
    const firstOk: number[] = [];
    let failedTries = 0;
    await Promise.all(
      cloned.vms.map(async (v) => {
        for (;;) {
          try {
            const got = await probeRead(nbdHost, nbdPort, `${v.name}/0`);
            if (!got.equals(head)) throw new Error(`${v.name}/0 reads other bytes than the gold image`);
            firstOk.push(performance.now() - returned);
            return;
          } catch (e) {
            if (e instanceof Error && e.message.includes('other bytes')) throw e;
            failedTries++;
            if (performance.now() - returned > 30_000) throw new Error(`${v.name}/0 not readable 30 s after the clone: ${String(e)}`);
            await sleep(20);
          }
        }
      }),
    );
    const allReadableMs = Math.max(...firstOk);
    const cloneCmdMs = returned - t0;
    log(
      `clone --count ${CLONES}: command ${cloneCmdMs.toFixed(0)} ms, all readable ${allReadableMs.toFixed(0)} ms after it returned (${failedTries} failed tries)`,
    );

    // The table.
    const [vf, qr, qq] = servers.map((s) => s.name) as [string, string, string];
    const cell = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : '-');
    const header = ['measure', vf, qr, qq, 'vf/raw', 'vf/qcow2', 'target'];
    const rows: string[][] = [];
    const targets: Record<string, { target: string; value: number; met: boolean }> = {};
    const target = (key: string, text: string, v: number, met: boolean): string => {
      targets[key] = { target: text, value: Math.round(v * 1000) / 1000, met };
      return `${text} ${met ? 'met' : 'NOT met'}`;
    };
    for (const w of WORKLOADS) {
      const r = results[w.key] as Record<string, Measured>;
      const [a, b, c] = [vf, qr, qq].map((n) => value(w, r[n] as Measured)) as [number, number, number];
      let t = '';
      if (w.key === 'randwrite-4k-qd16')
        t = target('randwrite-4k-vs-qcow2', '>=1x qcow2', a / c, a >= c) + `; stretch >=0.5x raw ${a >= 0.5 * b ? 'met' : 'not met'}`;
      if (w.key === 'randread-4k-qd16') t = target('randread-4k-vs-raw', '>=0.5x raw', a / b, a >= 0.5 * b);
      if (w.key === 'read-1m-qd4') t = target('seqread-vs-raw', '>=0.8x raw', a / b, a >= 0.8 * b);
      if (w.key === 'write-1m-qd4') t = target('seqwrite-vs-raw', '>=0.8x raw', a / b, a >= 0.8 * b);
      rows.push([`${w.label} (${w.unit})`, cell(a), cell(b), cell(c), cell(a / b, 2), cell(a / c, 2), t]);
      const lat = [vf, qr, qq].map((n) => ((r[n] as Measured).fio.clat.p99Us / 1000).toFixed(2));
      rows.push([`  p99 latency (ms)`, ...lat, '', '', '']);
      if (w.rw === 'randwrite' || w.rw === 'write') {
        const amp = [vf, qr, qq].map((n) => (r[n] as Measured).writeAmp ?? NaN) as [number, number, number];
        rows.push([`  write amp (written/guest bytes)`, cell(amp[0], 2), cell(amp[1], 2), cell(amp[2], 2), '', '', '']);
      }
    }
    // Background work lands on whichever job it follows, so the target reads all 4 KiB random-write jobs together.
    const small = WORKLOADS.filter((w) => w.rw === 'randwrite' && w.bs === '4k');
    const ampAll = [vf, qr, qq].map((n) => {
      const ms = small.map((w) => results[w.key]?.[n]).filter((m): m is Measured => m !== undefined);
      return ms.reduce((t, m) => t + (m.written ?? 0), 0) / ms.reduce((t, m) => t + m.fio.bytes, 0);
    }) as [number, number, number];
    rows.push([
      `write amp, all 4K rand write jobs`,
      cell(ampAll[0], 2),
      cell(ampAll[1], 2),
      cell(ampAll[2], 2),
      '',
      '',
      target('write-amp-4k', '<=3x (before folding)', ampAll[0], ampAll[0] <= 3),
    ]);
    const v = cloneRead['vmferry'] ?? { goldMBps: NaN, cloneMBps: NaN };
    const q = cloneRead['qemu-nbd'] ?? { goldMBps: NaN, cloneMBps: NaN };
    rows.push([`ext4 ${ext4MiB} MiB: gold image read (MB/s)`, cell(v.goldMBps), cell(q.goldMBps), '', cell(v.goldMBps / q.goldMBps, 2), '', '']);
    rows.push([
      `  fresh clone read (MB/s)`,
      cell(v.cloneMBps),
      '',
      cell(q.cloneMBps),
      cell(v.cloneMBps / q.goldMBps, 2),
      cell(v.cloneMBps / q.cloneMBps, 2),
      target('clone-read-vs-gold', 'clone within 10% of gold', v.cloneMBps / v.goldMBps, v.cloneMBps >= 0.9 * v.goldMBps),
    ]);
    rows.push([`  clone / gold`, cell(v.cloneMBps / v.goldMBps, 2), '', cell(q.cloneMBps / q.goldMBps, 2), '', '', '']);
    const stallMs = snapped.clat.maxUs / 1000;
    rows.push([`4K QD16 write max latency, snapshot/s (ms)`, cell(stallMs, 1), '', '', '', '', target('snapshot-stall', '<50 ms', stallMs, stallMs < 50)]);
    rows.push([`  same run, no snapshots (ms)`, cell(quiet.clat.maxUs / 1000, 1), '', '', '', '', '']);
    rows.push([`  IOPS with / without snapshots`, `${cell(snapped.iops)}/${cell(quiet.iops)}`, '', '', '', '', '']);
    rows.push([`  snapshots taken, slowest (ms)`, `${snapMs.length}, ${cell(Math.max(...snapMs), 0)}`, '', '', '', '', '']);
    rows.push([`clone --count ${CLONES}: command (ms)`, cell(cloneCmdMs), '', '', '', '', '']);
    rows.push([
      `  then all ${CLONES} exports read 4 KiB (ms)`,
      cell(allReadableMs),
      '',
      '',
      '',
      '',
      target('clone-fanout', '<2000 ms', allReadableMs, allReadableMs < 2000),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (r: string[]): string =>
      r
        .map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    console.log(`\nfio nbd engine, ${RUNTIME_S} s per job, ${DISK / MiB} MiB disks on ${fsType}; vmferry = a clone of an imported random image`);
    console.log(line(header));
    for (const r of rows) console.log(line(r));

    const out = writeReport('bench-nbd', {
      node: process.version,
      date: new Date().toISOString(),
      quick: QUICK,
      runtimeS: RUNTIME_S,
      diskBytes: DISK,
      filesystem: fsType,
      qemuNbd: { cache: 'writeback (default)', aio: 'threads (default)', flags: '-t --shared=16' },
      workloads: Object.fromEntries(WORKLOADS.map((w) => [w.key, { ...w, servers: results[w.key] }])),
      snapshotStall: { withoutSnapshots: quiet, withSnapshots: snapped, snapshotMs: snapMs },
      cloneRead: { imageMiB: ext4MiB, allocatedBytes: ext4Used, ...cloneRead },
      cloneFanout: { clones: CLONES, commandMs: cloneCmdMs, allReadableMs, failedTries },
      // What the node said about the run (NBD connection errors would show here).
      nodeLogTail: node.log().trim().split('\n').slice(-40),
      writeAmp4kAllJobs: { [vf]: ampAll[0], [qr]: ampAll[1], [qq]: ampAll[2] },
      targets,
    });
    console.log(`\nreport: ${out}`);
  } finally {
    client.close();
    for (const q of qemus) await q.stop();
    await node?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

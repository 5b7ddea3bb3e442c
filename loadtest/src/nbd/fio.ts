/** fio with its nbd engine (libnbd inside fio): one job, JSON output parsed to the numbers the NBD benchmark reports. */
import { execFile } from 'node:child_process';

export interface FioJob {
  /** nbd://HOST:PORT/EXPORT or nbd+unix:///EXPORT?socket=PATH */
  readonly uri: string;
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  /** fio block size, e.g. '4k', '1m'. */
  readonly bs: string;
  readonly iodepth: number;
  /** Time-based run of this many seconds; without it, one pass over `size`. */
  readonly runtimeS?: number;
  /** Bytes of the disk the job covers (the whole disk). */
  readonly size: number;
  /** A flush (NBD_CMD_FLUSH) every N writes (fio --fsync=N). */
  readonly fsyncEvery?: number;
}

export interface FioLatency {
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
}

export interface FioResult {
  readonly iops: number;
  readonly bytesPerSecond: number;
  readonly ios: number;
  readonly bytes: number;
  /** Completion latency of the reads or writes. */
  readonly clat: FioLatency;
  /** Flushes fio issued (with fsyncEvery), and their latency. */
  readonly flushes: number;
  readonly flushLat?: FioLatency;
}

interface FioLatNs {
  readonly mean: number;
  readonly max: number;
  readonly N?: number;
  readonly percentile?: Record<string, number>;
}
interface FioDir {
  readonly io_bytes: number;
  readonly bw_bytes: number;
  readonly iops: number;
  readonly total_ios: number;
  readonly clat_ns: FioLatNs;
}
interface FioJson {
  readonly jobs: readonly {
    readonly error: number;
    readonly read: FioDir;
    readonly write: FioDir;
    readonly sync: { readonly total_ios: number; readonly lat_ns: FioLatNs };
  }[];
}

function latency(ns: FioLatNs): FioLatency {
  const p = (k: string): number => (ns.percentile?.[k] ?? NaN) / 1000;
  return { meanUs: ns.mean / 1000, p50Us: p('50.000000'), p99Us: p('99.000000'), p999Us: p('99.900000'), maxUs: ns.max / 1000 };
}

/** The fio command line for `job` (random buffers refilled per I/O, so nothing dedups or compresses). */
export function fioArgs(job: FioJob): string[] {
  return [
    '--name=bench',
    '--ioengine=nbd',
    `--uri=${job.uri}`,
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`,
    `--size=${job.size}`,
    '--refill_buffers=1',
    '--randrepeat=0',
    '--norandommap=1',
    '--percentile_list=50:99:99.9',
    ...(job.runtimeS === undefined ? [] : [`--runtime=${job.runtimeS}`, '--time_based=1']),
    ...(job.fsyncEvery === undefined ? [] : [`--fsync=${job.fsyncEvery}`]),
    '--output-format=json',
  ];
}

/** Runs one fio job; fio's nbd engine prints "fio: connected to NBD server" before the JSON, so parsing starts at the first '{'. */
export function runFio(job: FioJob): Promise<FioResult> {
  const args = fioArgs(job);
  return new Promise((resolve, reject) => {
    execFile('fio', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`fio ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout.slice(0, 2000)}`));
        return;
      }
      const start = stdout.indexOf('{');
      const doc = JSON.parse(stdout.slice(start)) as FioJson;
      const j = doc.jobs[0];
      if (!j || j.error !== 0) {
        reject(new Error(`fio job error ${j?.error ?? 'missing'}: ${stderr}`));
        return;
      }
      const d = job.rw === 'randread' || job.rw === 'read' ? j.read : j.write;
      resolve({
        iops: d.iops,
        bytesPerSecond: d.bw_bytes,
        ios: d.total_ios,
        bytes: d.io_bytes,
        clat: latency(d.clat_ns),
        flushes: j.sync.total_ios,
        ...(j.sync.total_ios > 0 ? { flushLat: latency(j.sync.lat_ns) } : {}),
      });
    });
  });
}

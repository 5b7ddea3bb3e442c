/**
 * A client's CLI calls, classified: done, cut off by a kill, DATA_LOSS (always a loss, kill
 * or not) or another failure. Exports are read back and compared with the model here.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import type { DiskImage } from './disk-image.js';
import type { NodeControl } from './node-control.js';
import type { Tally } from './report.js';

/** How a call ended, with the parsed `--json` document when it succeeded. */
export type CallResult<T> =
  | { readonly status: 'ok'; readonly value: T }
  | { readonly status: 'interrupted' }
  | { readonly status: 'data-loss'; readonly stderr: string }
  | { readonly status: 'failed'; readonly stderr: string };

/** The parts of `vm list` / `vm create` / `vm import` / `clone` output the soak reads. */
export interface VmJson {
  readonly name: string;
  readonly disks: readonly { readonly size: number; readonly blockSize: number; readonly gridOffset: number }[];
}

/** `snapshot create` / `snapshot list` output the soak reads. */
export interface SnapshotJson {
  readonly id: string;
}

/** One client's access to the node. */
export class ClientIo {
  constructor(
    readonly ctl: NodeControl,
    readonly tally: Tally,
    /** A file path private to this client (its data file; `.export` is appended for exports). */
    readonly scratch: string,
  ) {}

  /** Runs a CLI call; a failure that is neither a kill nor DATA_LOSS is counted as an error. */
  async call<T>(what: string, args: readonly string[]): Promise<CallResult<T>> {
    const r = await this.ctl.cli(args);
    if (r.code === 0) return { status: 'ok', value: JSON.parse(r.stdout) as T };
    if (r.stderr.includes('DATA_LOSS')) return { status: 'data-loss', stderr: r.stderr };
    if (r.interrupted) return { status: 'interrupted' };
    this.tally.error(what, r.stderr);
    return { status: 'failed', stderr: r.stderr };
  }

  /** Exports vDisk 0 of `ref` and returns its bytes. */
  async export(ref: string): Promise<CallResult<Buffer>> {
    const file = `${this.scratch}.export`;
    try {
      const r = await this.call(`disk export ${ref}`, ['disk', 'export', ref, '0', file]);
      return r.status === 'ok' ? { status: 'ok', value: readFileSync(file) } : r;
    } finally {
      rmSync(file, { force: true });
    }
  }

  /**
   * Exports `ref` and compares it with `expected`. A mismatch or a failed export (other than a
   * kill) is a loss. Returns 'interrupted' when a kill cut the export off (check again later).
   */
  async check(ref: string, expected: DiskImage, kind: string, note = ''): Promise<'ok' | 'lost' | 'interrupted'> {
    const r = await this.export(ref);
    if (r.status === 'interrupted') return 'interrupted';
    this.tally.check(kind);
    const what = `${kind} ${ref}${note ? ` (${note})` : ''}`;
    const want = `${expected.size} bytes, sha256 ${expected.sha256()}`;
    if (r.status !== 'ok') {
      this.tally.loss(`${what}: export failed`, want, r.stderr);
      return 'lost';
    }
    const got = r.value;
    const sha = sha256(got);
    if (got.length === expected.size && sha === expected.sha256()) return 'ok';
    this.tally.loss(`${what}: content differs`, want, `${got.length} bytes, sha256 ${sha}`);
    return 'lost';
  }

  /** `vm list`, or undefined when a kill cut it off or it failed. */
  async listVms(): Promise<VmJson[] | undefined> {
    const r = await this.call<VmJson[]>('vm list', ['vm', 'list']);
    return r.status === 'ok' ? r.value : undefined;
  }

  /** `snapshot list VM`, or undefined when a kill cut it off or it failed. */
  async listSnapshots(vm: string): Promise<SnapshotJson[] | undefined> {
    const r = await this.call<SnapshotJson[]>(`snapshot list ${vm}`, ['snapshot', 'list', vm]);
    return r.status === 'ok' ? r.value : undefined;
  }
}

/** sha256 (hex) of `b`. */
export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

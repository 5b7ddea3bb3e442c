import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FINGERPRINT_BYTES, InternalError, type Fingerprint } from '@vmferry/core';
import type { CodecRequest, CodecResponse } from './codec-protocol.js';
import { DEFAULT_ZSTD_LEVEL } from './chunk-codec.js';
import { Decompressor } from 'zstd-napi';
import { decodeChecked, split, type ChunkCodec, type Decoded } from './codec-ops.js';

type Job = { resolve: (r: CodecResponse) => void; reject: (e: Error) => void };
type Payload = { op: 'hash' } | { op: 'encode'; level: number } | { op: 'decode'; fps: ArrayBuffer };

/** Batches are sent to the workers in slices of about this many bytes (sliced). */
const SLICE_BYTES = 1024 * 1024;
/** Batches of stored bytes up to this size are decoded on the calling thread (decode). */
const INLINE_DECODE_BYTES = 160 * 1024;

export interface CodecPoolOptions {
  /** Worker threads; default: the machine's available parallelism. */
  readonly threads?: number;
  /** zstd level for stored chunks; default 3. */
  readonly zstdLevel?: number;
}

/**
 * A pool of codec workers. Each call sends one batch to the least loaded worker; batches are
 * copied in (the caller keeps its buffers) and transferred back.
 */
export class CodecPool implements ChunkCodec {
  private readonly workers: { worker: Worker; pending: Map<number, Job> }[] = [];
  private nextId = 1;
  private dctx: Decompressor | undefined;
  readonly zstdLevel: number;

  constructor(options: CodecPoolOptions = {}) {
    this.zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    const n = Math.max(1, options.threads ?? availableParallelism());
    for (let i = 0; i < n; i++) {
      const worker = new Worker(join(__dirname, 'codec-worker.js'));
      const pending = new Map<number, Job>();
      worker.on('message', (m: { id: number; res: CodecResponse }) => {
        const job = pending.get(m.id);
        pending.delete(m.id);
        job?.resolve(m.res);
      });
      worker.on('error', (e) => {
        for (const job of pending.values()) job.reject(e);
        pending.clear();
      });
      this.workers.push({ worker, pending });
    }
  }

  private run(parts: readonly Uint8Array[], payload: Payload): Promise<CodecResponse> {
    const total = parts.reduce((n, p) => n + p.length, 0);
    // Not zero-filled (every byte is copied over), and its own ArrayBuffer, so it can be transferred.
    const buf = Buffer.allocUnsafeSlow(total).buffer;
    const view = new Uint8Array(buf);
    let at = 0;
    for (const p of parts) {
      view.set(p, at);
      at += p.length;
    }
    const w = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    const req: CodecRequest = { id, buf, lens: parts.map((p) => p.length), ...payload };
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.worker.postMessage(req, [buf]);
    });
  }

  /**
   * Runs `fn` on slices of `parts` of about SLICE_BYTES each, all in flight at once (spread over
   * the workers), and yields to the event loop between slices: copying a 16 MiB batch into
   * one message in one go held the event loop for tens of milliseconds, and so every guest I/O
   * waiting behind a snapshot's fold.
   */
  private async sliced<T>(parts: readonly Uint8Array[], fn: (slice: readonly Uint8Array[], from: number) => Promise<T[]>): Promise<T[]> {
    const pending: Promise<T[]>[] = [];
    for (let from = 0; from < parts.length;) {
      let to = from;
      for (let bytes = 0; to < parts.length && (to === from || bytes + (parts[to] as Uint8Array).length <= SLICE_BYTES); to++)
        bytes += (parts[to] as Uint8Array).length;
      if (pending.length > 0) await new Promise((r) => setImmediate(r));
      pending.push(fn(parts.slice(from, to), from));
      from = to;
    }
    return (await Promise.all(pending)).flat();
  }

  /** Fingerprints of `blocks`, HOLE for all-zero blocks. */
  hash(blocks: readonly Uint8Array[]): Promise<Fingerprint[]> {
    return this.sliced(blocks, async (slice) => {
      const fps = Buffer.from(expect(await this.run(slice, { op: 'hash' }), 'hashed').fps);
      return slice.map((_, i) => fps.subarray(i * FINGERPRINT_BYTES, (i + 1) * FINGERPRINT_BYTES));
    });
  }

  /** Stored records (codec byte + payload) for `blocks`. */
  encode(blocks: readonly Uint8Array[]): Promise<Buffer[]> {
    return this.sliced(blocks, async (slice) => {
      const res = expect(await this.run(slice, { op: 'encode', level: this.zstdLevel }), 'encoded');
      return split(res.buf, res.lens);
    });
  }

  /**
   * Raw bytes of stored records, each checked against its fingerprint. A small batch (a guest's
   * random read: one 64 KiB chunk) is decoded here, on the calling thread: zstd and BLAKE3 of
   * 64 KiB take about 30 µs, a round trip to a worker several times that.
   */
  async decode(records: readonly Uint8Array[], fps: readonly Fingerprint[]): Promise<Decoded[]> {
    if (records.length === 0) return [];
    if (records.reduce((n, r) => n + r.length, 0) <= INLINE_DECODE_BYTES) {
      this.dctx ??= new Decompressor();
      const dctx = this.dctx;
      return records.map((r, i) => decodeChecked(dctx, Buffer.from(r.buffer, r.byteOffset, r.byteLength), fps[i] as Fingerprint));
    }
    return this.sliced(records, async (slice, from) => {
      const fpBuf = Buffer.concat(fps.slice(from, from + slice.length));
      const fpCopy = fpBuf.buffer.slice(fpBuf.byteOffset, fpBuf.byteOffset + fpBuf.byteLength);
      const res = expect(await this.run(slice, { op: 'decode', fps: fpCopy }), 'decoded');
      const raws = split(res.buf, res.lens);
      return raws.map((data, i): Decoded => {
        const err = res.errors[i];
        return err ? { ok: false, reason: err } : { ok: true, data };
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

function expect<K extends CodecResponse['kind']>(res: CodecResponse, kind: K): Extract<CodecResponse, { kind: K }> {
  if (res.kind === 'failed') throw new InternalError(`codec worker failed: ${res.message}`);
  if (res.kind !== kind) throw new InternalError(`codec worker answered ${res.kind}, expected ${kind}`);
  return res as Extract<CodecResponse, { kind: K }>;
}

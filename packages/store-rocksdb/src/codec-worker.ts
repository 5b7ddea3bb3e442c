/*
 * Worker thread for the CPU-heavy chunk work: hashing, compressing and decompressing with
 * verification. Hashing and zstd are synchronous native calls; running them here keeps the
 * node's event loop free and both cores busy. Messages carry many chunks back to back.
 */
import { parentPort } from 'node:worker_threads';
import * as zstd from 'zstd-napi';
import { chunkMatches, fingerprint, FINGERPRINT_BYTES, InvalidArgumentError, isZero, rawRecord, recordBytes, zstdRecord } from '@vmferry/core';
import { MAX_COMPRESSED_FRACTION } from './chunk-codec.js';
import type { CodecRequest, CodecResponse } from './codec-protocol.js';

const cctx = new zstd.Compressor();
const dctx = new zstd.Decompressor();
let level = -1;

function slices(buf: ArrayBuffer, lens: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of lens) {
    out.push(Buffer.from(buf, at, n));
    at += n;
  }
  return out;
}

function pack(parts: readonly Buffer[]): { buf: ArrayBuffer; lens: number[] } {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const p of parts) {
    p.copy(out, at);
    at += p.length;
  }
  return { buf: out.buffer, lens: parts.map((p) => p.length) };
}

function hash(blocks: Buffer[]): CodecResponse {
  const fps = Buffer.allocUnsafeSlow(blocks.length * FINGERPRINT_BYTES);
  blocks.forEach((b, i) => {
    if (isZero(b)) fps.fill(0, i * FINGERPRINT_BYTES, (i + 1) * FINGERPRINT_BYTES);
    else fingerprint(b).copy(fps, i * FINGERPRINT_BYTES);
  });
  return { kind: 'hashed', fps: fps.buffer };
}

function encode(blocks: Buffer[], zstdLevel: number): CodecResponse {
  if (zstdLevel !== level) {
    cctx.setParameters({ compressionLevel: zstdLevel });
    level = zstdLevel;
  }
  const records = blocks.map((b) => {
    const z = cctx.compress(b);
    return z.length <= b.length * MAX_COMPRESSED_FRACTION ? zstdRecord(z) : rawRecord(b);
  });
  return { kind: 'encoded', ...pack(records) };
}

function decodeOne(record: Buffer): Buffer {
  const raw = recordBytes(record, (frame) => dctx.decompress(frame));
  // Caught below and reported as the chunk's reason; never leaves the worker as a throw.
  if (raw === undefined) throw new InvalidArgumentError(`unknown codec ${String(record[0])}`);
  return raw;
}

function decode(records: Buffer[], fps: Buffer): CodecResponse {
  const errors: (string | null)[] = [];
  const raws = records.map((r, i) => {
    try {
      const raw = decodeOne(r);
      const want = fps.subarray(i * FINGERPRINT_BYTES, (i + 1) * FINGERPRINT_BYTES);
      if (!chunkMatches(want, raw)) {
        errors.push('content does not match its fingerprint');
        return Buffer.alloc(0);
      }
      errors.push(null);
      return raw;
    } catch (e) {
      errors.push(`cannot decode: ${(e as Error).message}`);
      return Buffer.alloc(0);
    }
  });
  return { kind: 'decoded', ...pack(raws), errors };
}

parentPort?.on('message', (req: CodecRequest) => {
  let res: CodecResponse;
  try {
    const parts = slices(req.buf, req.lens);
    if (req.op === 'hash') res = hash(parts);
    else if (req.op === 'encode') res = encode(parts, req.level);
    else res = decode(parts, Buffer.from(req.fps));
  } catch (e) {
    res = { kind: 'failed', message: (e as Error).message };
  }
  const transfer = 'buf' in res ? [res.buf] : 'fps' in res ? [res.fps] : [];
  parentPort?.postMessage({ id: req.id, res }, transfer);
});

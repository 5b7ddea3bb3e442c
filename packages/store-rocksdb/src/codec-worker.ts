/*
 * Worker thread for the CPU-heavy chunk work: hashing, compressing and decompressing with
 * verification. Hashing and zstd are synchronous native calls; running them here keeps the
 * node's event loop free and both cores busy. Messages carry many chunks back to back.
 */
import { parentPort } from 'node:worker_threads';
import * as zstd from 'zstd-napi';
import { FINGERPRINT_BYTES } from '@vmferry/core';
import { decodeChecked, encodeBlock, hashBlock, split } from './codec-ops.js';
import type { CodecRequest, CodecResponse } from './codec-protocol.js';

const cctx = new zstd.Compressor();
const dctx = new zstd.Decompressor();
let level = -1;

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
  blocks.forEach((b, i) => hashBlock(b).copy(fps, i * FINGERPRINT_BYTES));
  return { kind: 'hashed', fps: fps.buffer };
}

function encode(blocks: Buffer[], zstdLevel: number): CodecResponse {
  if (zstdLevel !== level) {
    cctx.setParameters({ compressionLevel: zstdLevel });
    level = zstdLevel;
  }
  return { kind: 'encoded', ...pack(blocks.map((b) => encodeBlock(cctx, b))) };
}

function decode(records: Buffer[], fps: Buffer): CodecResponse {
  const decoded = records.map((r, i) => decodeChecked(dctx, r, fps.subarray(i * FINGERPRINT_BYTES, (i + 1) * FINGERPRINT_BYTES)));
  // A rejected chunk travels back as an empty piece with its reason.
  return { kind: 'decoded', ...pack(decoded.map((d) => (d.ok ? d.data : Buffer.alloc(0)))), errors: decoded.map((d) => (d.ok ? null : d.reason)) };
}

parentPort?.on('message', (req: CodecRequest) => {
  let res: CodecResponse;
  try {
    const parts = split(req.buf, req.lens);
    if (req.op === 'hash') res = hash(parts);
    else if (req.op === 'encode') res = encode(parts, req.level);
    else res = decode(parts, Buffer.from(req.fps));
  } catch (e) {
    res = { kind: 'failed', message: (e as Error).message };
  }
  const transfer = 'buf' in res ? [res.buf] : 'fps' in res ? [res.fps] : [];
  parentPort?.postMessage({ id: req.id, res }, transfer);
});

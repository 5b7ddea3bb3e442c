import { Compressor, Decompressor } from 'zstd-napi';
import type { Fingerprint } from '@vmferry/core';
import { DEFAULT_ZSTD_LEVEL } from './chunk-codec.js';
import { decodeChecked, encodeBlock, hashBlock, type ChunkCodec, type Decoded } from './codec-ops.js';

/**
 * The chunk codec on the calling thread: the same work as the codec workers (codec-ops.ts),
 * without threads to start or stop. For in-process tests and small stores; it blocks the event
 * loop for as long as a batch takes.
 */
export class InlineCodec implements ChunkCodec {
  private readonly cctx = new Compressor();
  private readonly dctx = new Decompressor();

  constructor(zstdLevel: number = DEFAULT_ZSTD_LEVEL) {
    this.cctx.setParameters({ compressionLevel: zstdLevel });
  }

  hash(blocks: readonly Uint8Array[]): Promise<Fingerprint[]> {
    return Promise.resolve(blocks.map(hashBlock));
  }

  encode(blocks: readonly Uint8Array[]): Promise<Buffer[]> {
    return Promise.resolve(blocks.map((b) => encodeBlock(this.cctx, Buffer.from(b.buffer, b.byteOffset, b.byteLength))));
  }

  decode(records: readonly Uint8Array[], fps: readonly Fingerprint[]): Promise<Decoded[]> {
    return Promise.resolve(records.map((r, i) => decodeChecked(this.dctx, Buffer.from(r.buffer, r.byteOffset, r.byteLength), fps[i] as Fingerprint)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

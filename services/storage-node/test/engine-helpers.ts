/** Helpers for in-process engine tests (real RocksDB in a temp dir, no node process). */
import { createHash } from 'node:crypto';
import { extentBytes } from '../src/disk-reader.js';
import type { StorageEngine } from '../src/engine.js';

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The whole of vDisk 0 of `ref` (`VM` or `VM@SNAPSHOT`), holes as zeros. */
export async function readAll(engine: StorageEngine, ref: string): Promise<Buffer> {
  const { size, extents } = engine.read(ref, 0, 0, 0);
  const out = Buffer.alloc(size);
  for await (const x of extents) extentBytes(x).copy(out, x.offset);
  return out;
}

/** Writes `data` into vDisk 0 of the VM's live state at `offset`. */
export async function writeAt(engine: StorageEngine, vm: string, offset: number, data: Buffer): Promise<void> {
  const w = engine.openWriter(vm, 0, offset, data.length);
  await w.write(data);
  await w.end();
}

/** Helpers for in-process engine tests (real RocksDB in a temp dir, no node process). */
import { createHash } from 'node:crypto';
import { after, before } from 'node:test';
import { extentBytes } from '../src/disk-reader.js';
import { StorageEngine } from '../src/engine.js';
import { removeDir, tempDir } from './helpers.js';

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

/**
 * Opens an engine on a fresh temp dir before the enclosing suite's tests and closes and removes
 * it after them; read `engine` and `dir` inside tests.
 */
export function tempEngine(): { readonly engine: StorageEngine; readonly dir: string } {
  const state: { engine?: StorageEngine; dir: string } = { dir: '' };
  before(async () => {
    state.dir = tempDir();
    state.engine = await StorageEngine.open({ dataDir: state.dir, codecThreads: 1 });
  });
  after(async () => {
    await state.engine?.close();
    removeDir(state.dir);
  });
  return {
    get engine(): StorageEngine {
      if (!state.engine) throw new Error("the engine opens in the suite's before hook");
      return state.engine;
    },
    get dir(): string {
      return state.dir;
    },
  };
}

/*
 * Live writes since a VM's last snapshot ('d' keys, keys.ts): per vDisk and block, the chunk
 * id now there (HOLE for a block written with zeros over data). Big-endian block numbers make
 * key order block order, so a range read is a block range.
 */
import type { Fingerprint, LeafUpdate } from '@vmferry/core';
import type { Database, WriteBatch } from '../database.js';
import { blockOfDirtyKey, dirtyDiskPrefix, dirtyKey, dirtyVmPrefix, prefixRange } from '../keys.js';

/** Read options: the block range [from, to) and how many entries per native read. */
export interface LiveWriteRange {
  readonly from?: number;
  readonly to?: number;
  readonly capacity?: number;
}

/** The live-write table. Key builders throw InvalidArgumentError for a malformed VM id. */
export class LiveWriteTable {
  constructor(private readonly db: Database) {}

  /** The live writes of one vDisk in block order (all of them, or those of a block range). */
  async *entries(vmId: string, disk: number, range: LiveWriteRange = {}): AsyncGenerator<LeafUpdate> {
    const all = prefixRange(dirtyDiskPrefix(vmId, disk));
    const bounds = {
      gte: range.from === undefined ? all.gte : dirtyKey(vmId, disk, range.from),
      lt: range.to === undefined ? all.lt : dirtyKey(vmId, disk, range.to),
    };
    for await (const { key, value } of this.db.entries(bounds, true, range.capacity)) {
      yield { block: blockOfDirtyKey(key), fp: Buffer.from(value) };
    }
  }

  /** The chunk ids of every live write of a VM (all vDisks; holes included). */
  async *ids(vmId: string): AsyncGenerator<Fingerprint> {
    for await (const { value } of this.db.entries(prefixRange(dirtyVmPrefix(vmId)))) yield Buffer.from(value);
  }

  /** Whether one vDisk has any live write. */
  async any(vmId: string, disk: number): Promise<boolean> {
    for await (const _ of this.db.entries(prefixRange(dirtyDiskPrefix(vmId, disk)), false, 1)) return true;
    return false;
  }

  /** Stages "block `block` of vDisk `disk` now holds `fp`". */
  stagePut(batch: WriteBatch, vmId: string, disk: number, block: number, fp: Fingerprint): void {
    batch.tryPut(dirtyKey(vmId, disk, block), fp);
  }

  /** Stages dropping the live writes of one vDisk, or of every vDisk of the VM. */
  stageClear(batch: WriteBatch, vmId: string, disk?: number): void {
    const r = prefixRange(disk === undefined ? dirtyVmPrefix(vmId) : dirtyDiskPrefix(vmId, disk));
    batch.tryDeleteRange(r.gte, r.lt);
  }
}

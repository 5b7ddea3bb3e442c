/*
 * Replication bookkeeping on a source node: per VM and peer site, the base ('B' keys: the
 * newest snapshot the peer holds) and the snapshots queued for it, not yet acknowledged ('P'
 * keys, with the u64 BE time queued in ms). Layouts in keys.ts.
 */
import type { Database, WriteBatch } from '../database.js';
import { baseKey, basePrefix, pendingKey, pendingPrefix, pendingVmPrefix, prefixRange } from '../keys.js';

/** A snapshot queued for a peer site. */
export interface PendingReplication {
  readonly site: string;
  readonly queuedAtMs: number;
}

/** A peer site's base snapshot of a VM. */
export interface ReplicationBase {
  readonly site: string;
  readonly snapshotId: string;
}

/** The replication-state table. Key builders throw InvalidArgumentError for a malformed id. */
export class ReplicationStateTable {
  constructor(private readonly db: Database) {}

  /** Durably records `snapshotId` as `site`'s base of `vmId`, and that it is no longer pending. */
  async recordBase(vmId: string, site: string, snapshotId: string): Promise<void> {
    await this.db.commit(
      (b) => {
        b.tryPut(baseKey(vmId, site), Buffer.from(snapshotId));
        b.tryDelete(pendingKey(vmId, snapshotId, site));
      },
      { durable: true },
    );
  }

  /** Records that `snapshotId` was queued for `site` at `atMs`. */
  async recordPending(vmId: string, snapshotId: string, site: string, atMs: number): Promise<void> {
    const at = Buffer.alloc(8);
    at.writeBigUInt64BE(BigInt(atMs));
    await this.db.commit((b) => b.tryPut(pendingKey(vmId, snapshotId, site), at));
  }

  /** The sites `snapshotId` is queued for, with when. */
  async pending(vmId: string, snapshotId: string): Promise<PendingReplication[]> {
    const prefix = pendingPrefix(vmId, snapshotId);
    const out: PendingReplication[] = [];
    for await (const { key, value } of this.db.entries(prefixRange(prefix))) {
      out.push({ site: key.subarray(prefix.length).toString('latin1'), queuedAtMs: Number(value.readBigUInt64BE(0)) });
    }
    return out;
  }

  /** Each peer site's base of `vmId`. */
  async bases(vmId: string): Promise<ReplicationBase[]> {
    const prefix = basePrefix(vmId);
    const out: ReplicationBase[] = [];
    for await (const { key, value } of this.db.entries(prefixRange(prefix))) {
      out.push({ site: key.subarray(prefix.length).toString('latin1'), snapshotId: value.toString() });
    }
    return out;
  }

  /** Stages dropping every base and pending entry of a VM (the VM is being deleted). */
  stageClear(batch: WriteBatch, vmId: string): void {
    for (const prefix of [basePrefix(vmId), pendingVmPrefix(vmId)]) {
      const r = prefixRange(prefix);
      batch.tryDeleteRange(r.gte, r.lt);
    }
  }
}

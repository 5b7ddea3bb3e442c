/*
 * Every RocksDB key this node writes, in one place. One column family; the first byte is the
 * record kind. DO NOT CHANGE the prefixes or layouts: they are on disk. Format version 2 (the
 * 'M' "format" record) adds the level byte to tree nodes' 'i' entries; a version-1 folder is
 * upgraded in place on open (format-upgrade.ts).
 *
 *   'M' name                               meta (format version)
 *   'c' fp[32]                             chunk: codec byte + stored bytes
 *   'i' fp[32]                             chunk index: u32 stored length, u32 raw length,
 *                                          and for a tree node u8 level (GC sweeps top-down)
 *   'v' vmId[26]                           VM record (JSON)
 *   's' vmId[26] snapId[26]                snapshot record (JSON)
 *   'd' vmId[26] disk u16 BE block u64 BE  live write since the last snapshot: fp[32]
 *   'p' fp[32]                             pin: u64 BE expiry (ms) of a chunk received by an
 *                                          uncommitted replication, or reported present to a
 *                                          replicator; GC keeps it (and a node's subtree) until then
 *   'S' name                               peer site record (JSON)
 *   'P' vmId[26] snapId[26] site           replication pending: queued for `site`, not yet acked
 *                                          (u64 BE ms queued); kept from retention meanwhile
 *   'B' vmId[26] site                      replication base: the newest snapshot id of the VM
 *                                          that peer `site` holds (kept from deletion)
 *
 * `i` exists so a dedup check reads 8 bytes, not a 64 KiB chunk. Big-endian numbers make
 * iteration order block order.
 */
export const FORMAT_VERSION = 2;

const ID_BYTES = 26;

function key(prefix: string, ...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from(prefix, 'latin1'), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))]);
}

/** [gte, lt) covering every key that starts with `prefix`. */
export function prefixRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  const lt = Buffer.from(prefix);
  let i = lt.length - 1;
  while (i >= 0 && lt[i] === 0xff) i--;
  lt[i] = (lt[i] ?? 0) + 1;
  return { gte: prefix, lt: lt.subarray(0, i + 1) };
}

export const metaKey = (name: string): Buffer => key('M', name);

export const chunkKey = (fp: Buffer): Buffer => key('c', fp);
export const chunkIndexKey = (fp: Buffer): Buffer => key('i', fp);
export const CHUNK_INDEX_PREFIX = key('i');
export const CHUNK_PREFIX = key('c');
export const fpOfIndexKey = (k: Buffer): Buffer => k.subarray(1, 33);

export const vmKey = (vmId: string): Buffer => key('v', vmId);
export const VM_PREFIX = key('v');

export const snapshotKey = (vmId: string, snapId: string): Buffer => key('s', vmId, snapId);
export const snapshotPrefix = (vmId: string): Buffer => key('s', vmId);
export const SNAPSHOT_PREFIX = key('s');

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export const dirtyKey = (vmId: string, disk: number, block: number): Buffer => key('d', vmId, u16(disk), u64(block));
export const dirtyDiskPrefix = (vmId: string, disk: number): Buffer => key('d', vmId, u16(disk));
export const dirtyVmPrefix = (vmId: string): Buffer => key('d', vmId);
export const DIRTY_PREFIX = key('d');
export const blockOfDirtyKey = (k: Buffer): number => Number(k.readBigUInt64BE(1 + ID_BYTES + 2));
export const diskOfDirtyKey = (k: Buffer): number => k.readUInt16BE(1 + ID_BYTES);

export const pinKey = (fp: Buffer): Buffer => key('p', fp);
export const PIN_PREFIX = key('p');
export const fpOfPinKey = (k: Buffer): Buffer => k.subarray(1, 33);
export const siteKey = (name: string): Buffer => key('S', name);
export const SITE_PREFIX = key('S');
export const baseKey = (vmId: string, site: string): Buffer => key('B', vmId, site);
export const basePrefix = (vmId: string): Buffer => key('B', vmId);
export const pendingKey = (vmId: string, snapId: string, site: string): Buffer => key('P', vmId, snapId, site);
export const pendingPrefix = (vmId: string, snapId: string): Buffer => key('P', vmId, snapId);
export const pendingVmPrefix = (vmId: string): Buffer => key('P', vmId);

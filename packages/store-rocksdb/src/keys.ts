/*
 * Every RocksDB key this node writes, in one place. One column family; the first byte is the
 * record kind. DO NOT CHANGE the prefixes or layouts: they are on disk. Format version 2 (the
 * 'M' "format" record) adds the level byte to tree nodes' 'i' entries; a version-1 folder is
 * upgraded in place on open (format-upgrade.ts). Version 3 adds the page overlay ('w'): a
 * version-2 build would not read it, so the version record keeps such a build out; a version-2
 * folder has no 'w' keys and becomes version 3 by its version record alone.
 *
 *   'M' name                               meta (format version)
 *   'c' fp[32]                             chunk: codec byte + stored bytes
 *   'i' fp[32]                             chunk index: u32 stored length, u32 raw length,
 *                                          and for a tree node u8 level (GC sweeps top-down)
 *   'v' vmId[26]                           VM record (JSON)
 *   's' vmId[26] snapId[26]                snapshot record (JSON)
 *   'd' vmId[26] disk u16 BE block u64 BE  live write since the last snapshot: fp[32]
 *   'w' vmId[26] disk u16 BE block u64 BE page u16 BE
 *                                          page overlay: the raw bytes of one page (4 KiB from
 *                                          the block's start) written since the block was last
 *                                          folded; empty for a page of zeros. Pages win over 'd'
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
import { InvalidArgumentError, isId } from '@vmferry/core';

export const FORMAT_VERSION = 3;

const ID_BYTES = 26;

/*
 * The last line of defence: a VM or snapshot id is a fixed-width key component, so an empty
 * or malformed one would make a "prefix of this VM" cover other VMs' keys (an empty VM id's
 * dirty prefix is every VM's live writes). Builders refuse such ids before any key exists.
 */
function vmId(id: string): string {
  return checkedId(id, 'VM id');
}

function snapId(id: string): string {
  return checkedId(id, 'snapshot id');
}

function checkedId(id: string, what: string): string {
  if (typeof id !== 'string' || !isId(id)) {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- a peer may send anything: String() of whatever arrived
    throw new InvalidArgumentError(`${what} '${String(id).slice(0, 40)}' is not a valid id: no storage key is made for it`);
  }
  return id;
}

function siteName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('empty site name: no storage key is made for it');
  return name;
}

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

export const vmKey = (id: string): Buffer => key('v', vmId(id));
export const VM_PREFIX = key('v');

export const snapshotKey = (vm: string, snap: string): Buffer => key('s', vmId(vm), snapId(snap));
export const snapshotPrefix = (vm: string): Buffer => key('s', vmId(vm));
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

export const dirtyKey = (vm: string, disk: number, block: number): Buffer => key('d', vmId(vm), u16(disk), u64(block));
export const dirtyDiskPrefix = (vm: string, disk: number): Buffer => key('d', vmId(vm), u16(disk));
export const dirtyVmPrefix = (vm: string): Buffer => key('d', vmId(vm));
export const DIRTY_PREFIX = key('d');
export const blockOfDirtyKey = (k: Buffer): number => Number(k.readBigUInt64BE(1 + ID_BYTES + 2));
export const diskOfDirtyKey = (k: Buffer): number => k.readUInt16BE(1 + ID_BYTES);

export const pageKey = (vm: string, disk: number, block: number, page: number): Buffer => key('w', vmId(vm), u16(disk), u64(block), u16(page));
export const pageBlockPrefix = (vm: string, disk: number, block: number): Buffer => key('w', vmId(vm), u16(disk), u64(block));
export const pageDiskPrefix = (vm: string, disk: number): Buffer => key('w', vmId(vm), u16(disk));
export const pageVmPrefix = (vm: string): Buffer => key('w', vmId(vm));
export const PAGE_PREFIX = key('w');
export const vmOfPageKey = (k: Buffer): string => k.toString('latin1', 1, 1 + ID_BYTES);
export const diskOfPageKey = (k: Buffer): number => k.readUInt16BE(1 + ID_BYTES);
export const blockOfPageKey = (k: Buffer): number => Number(k.readBigUInt64BE(1 + ID_BYTES + 2));
export const pageOfPageKey = (k: Buffer): number => k.readUInt16BE(1 + ID_BYTES + 2 + 8);

export const pinKey = (fp: Buffer): Buffer => key('p', fp);
export const PIN_PREFIX = key('p');
export const fpOfPinKey = (k: Buffer): Buffer => k.subarray(1, 33);
export const siteKey = (name: string): Buffer => key('S', siteName(name));
export const SITE_PREFIX = key('S');
export const baseKey = (vm: string, site: string): Buffer => key('B', vmId(vm), siteName(site));
export const basePrefix = (vm: string): Buffer => key('B', vmId(vm));
export const pendingKey = (vm: string, snap: string, site: string): Buffer => key('P', vmId(vm), snapId(snap), siteName(site));
export const pendingPrefix = (vm: string, snap: string): Buffer => key('P', vmId(vm), snapId(snap));
export const pendingVmPrefix = (vm: string): Buffer => key('P', vmId(vm));

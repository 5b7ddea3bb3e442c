/*
 * Partition-table parsing (MBR and GPT), enough to pick a vDisk's grid offset: the start of
 * the largest partition modulo the block size. Pure: it reads the first sectors from a buffer.
 */
export const SECTOR = 512;

export interface Partition {
  readonly startBytes: number;
  readonly sizeBytes: number;
}

/** Bytes of the disk's start that parsePartitions needs to see a full GPT (header + 128 entries). */
export const PARTITION_TABLE_BYTES = 34 * SECTOR;

function parseMbr(head: Buffer): Partition[] {
  const out: Partition[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = head[e + 4];
    const start = head.readUInt32LE(e + 8);
    const count = head.readUInt32LE(e + 12);
    if (type === 0 || count === 0) continue;
    out.push({ startBytes: start * SECTOR, sizeBytes: count * SECTOR });
  }
  return out;
}

function parseGpt(head: Buffer): Partition[] | undefined {
  const h = SECTOR;
  if (head.length < 2 * SECTOR || head.toString('latin1', h, h + 8) !== 'EFI PART') return undefined;
  const entriesLba = Number(head.readBigUInt64LE(h + 72));
  const count = head.readUInt32LE(h + 80);
  const size = head.readUInt32LE(h + 84);
  if (size < 128 || count > 1024) return undefined;
  const out: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const e = entriesLba * SECTOR + i * size;
    if (e + size > head.length) break;
    const typeGuid = head.subarray(e, e + 16);
    if (typeGuid.every((b) => b === 0)) continue;
    const first = Number(head.readBigUInt64LE(e + 32));
    const last = Number(head.readBigUInt64LE(e + 40));
    if (last < first) continue;
    out.push({ startBytes: first * SECTOR, sizeBytes: (last - first + 1) * SECTOR });
  }
  return out;
}

/**
 * The partitions described by the disk's first sectors, or [] when there is no valid table.
 * A protective MBR (type 0xEE) defers to the GPT behind it.
 */
export function parsePartitions(head: Uint8Array): Partition[] {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (buf.length < SECTOR || buf[510] !== 0x55 || buf[511] !== 0xaa) return [];
  const protective = [0, 1, 2, 3].some((i) => buf[446 + i * 16 + 4] === 0xee);
  if (protective) return parseGpt(buf) ?? [];
  return parseMbr(buf);
}

/** The grid offset for a disk whose first bytes are `head`: largest partition's start mod blockSize. */
export function gridOffsetFor(head: Uint8Array, blockSize: number): number | undefined {
  const parts = parsePartitions(head);
  if (parts.length === 0) return undefined;
  const largest = parts.reduce((a, b) => (b.sizeBytes > a.sizeBytes ? b : a));
  return largest.startBytes % blockSize;
}

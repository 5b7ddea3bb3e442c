/*
 * A disk's partitions as a person (and file-level restore) sees them: number, scheme, type and
 * what the type means. Pure: parsed from the disk's first PARTITION_TABLE_BYTES (partition.ts). The grid
 * alignment in partition.ts needs only offsets; this adds the types on top of the same tables.
 */
import { SECTOR } from './partition.js';

/** What a partition type says its contents are. `extended` holds MBR logical partitions (not read). */
export type PartitionKind = 'linux' | 'windows' | 'efi' | 'swap' | 'lvm' | 'raid' | 'luks' | 'bios-boot' | 'extended' | 'reserved' | 'other';

export interface PartitionEntry {
  /** 1-based, as sfdisk, sgdisk and /dev/sdaN number them. */
  readonly number: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
  /** MBR: the type byte as two hex digits ("83"); GPT: the type GUID in its usual text form. */
  readonly type: string;
  readonly kind: PartitionKind;
  /** GPT partition name ('' on MBR). */
  readonly name: string;
}

export interface PartitionTable {
  /** `none`: no MBR signature; the disk may hold a filesystem from sector 0 (a "superfloppy"). */
  readonly scheme: 'mbr' | 'gpt' | 'none';
  readonly partitions: readonly PartitionEntry[];
}

const MBR_KINDS: Record<number, PartitionKind> = {
  0x83: 'linux',
  0x07: 'windows', // NTFS / exFAT
  0x01: 'windows', // FAT12
  0x04: 'windows', // FAT16 < 32 MiB
  0x06: 'windows', // FAT16
  0x0b: 'windows', // FAT32 CHS
  0x0c: 'windows', // FAT32 LBA
  0x0e: 'windows', // FAT16 LBA
  0xef: 'efi',
  0x82: 'swap',
  0x8e: 'lvm',
  0xfd: 'raid',
  0x05: 'extended',
  0x0f: 'extended',
  0x85: 'extended',
  0xee: 'reserved', // protective MBR (handled before this table is read)
};

/** The GPT type GUIDs file-level restore tells apart (upper case, text form). */
const GPT_KINDS: Record<string, PartitionKind> = {
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'linux', // Linux filesystem data
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'linux', // Linux root (x86-64)
  '44479540-F297-41B2-9AF7-D131D5F0458A': 'linux', // Linux root (x86)
  'B921B045-1DF0-41C3-AF44-4C6F280D3FAE': 'linux', // Linux root (arm64)
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'linux', // Linux /home
  '3B8F8425-20E0-4F3B-907F-1A25A76F98E8': 'linux', // Linux /srv
  '4D21B016-B534-45C2-A9FB-5C16E091FD2D': 'linux', // Linux /var
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'linux', // Linux extended boot (/boot)
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'windows', // Microsoft basic data
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'efi',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'lvm',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'raid',
  'CA7D7CCB-63ED-4C53-861C-1742536059CC': 'luks',
  '21686148-6449-6E6F-744E-656564454649': 'bios-boot',
  'E3C9E316-0B5C-4DB8-817D-F92DF00215AE': 'reserved', // Microsoft reserved
  'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC': 'reserved', // Windows recovery
};

/** A GPT GUID's text form: the first three fields are stored little-endian. */
export function guidText(b: Uint8Array): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const bytes = Array.from(b.subarray(from, to));
    return (reverse ? bytes.reverse() : bytes).map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join('-').toUpperCase();
}

function mbrEntries(buf: Buffer): PartitionEntry[] {
  const out: PartitionEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = buf[e + 4] ?? 0;
    const start = buf.readUInt32LE(e + 8);
    const count = buf.readUInt32LE(e + 12);
    if (type === 0 || count === 0) continue;
    const kind = MBR_KINDS[type] ?? 'other';
    out.push({ number: i + 1, startBytes: start * SECTOR, sizeBytes: count * SECTOR, type: type.toString(16).padStart(2, '0'), kind, name: '' });
  }
  return out;
}

function gptEntries(buf: Buffer): PartitionEntry[] | undefined {
  const h = SECTOR;
  if (buf.length < 2 * SECTOR || buf.toString('latin1', h, h + 8) !== 'EFI PART') return undefined;
  const entriesLba = Number(buf.readBigUInt64LE(h + 72));
  const count = buf.readUInt32LE(h + 80);
  const size = buf.readUInt32LE(h + 84);
  if (size < 128 || count > 1024) return undefined;
  const out: PartitionEntry[] = [];
  for (let i = 0; i < count; i++) {
    const e = entriesLba * SECTOR + i * size;
    if (e + size > buf.length) break;
    const typeGuid = buf.subarray(e, e + 16);
    if (typeGuid.every((x) => x === 0)) continue;
    const first = Number(buf.readBigUInt64LE(e + 32));
    const last = Number(buf.readBigUInt64LE(e + 40));
    if (last < first) continue;
    const type = guidText(typeGuid);
    const name = buf
      .subarray(e + 56, e + 128)
      .toString('utf16le')
      .replace(/\0[\s\S]*$/, '');
    out.push({ number: i + 1, startBytes: first * SECTOR, sizeBytes: (last - first + 1) * SECTOR, type, kind: GPT_KINDS[type] ?? 'other', name });
  }
  return out;
}

/**
 * The partition table in the disk's first bytes (at least PARTITION_TABLE_BYTES for a full
 * GPT). A protective MBR (type 0xEE) defers to the GPT behind it; a damaged GPT reads as none.
 */
export function readPartitionTable(head: Uint8Array): PartitionTable {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (buf.length < SECTOR || buf[510] !== 0x55 || buf[511] !== 0xaa) return { scheme: 'none', partitions: [] };
  const protective = [0, 1, 2, 3].some((i) => buf[446 + i * 16 + 4] === 0xee);
  if (protective) return { scheme: 'gpt', partitions: gptEntries(buf) ?? [] };
  return { scheme: 'mbr', partitions: mbrEntries(buf) };
}

/**
 * The partition file-level restore opens when none is named: the largest Linux or Windows
 * data partition; failing that, the largest EFI system partition; undefined when neither exists.
 */
export function defaultDataPartition<P extends { readonly kind: string; readonly sizeBytes: number }>(parts: readonly P[]): P | undefined {
  const largest = (list: readonly P[]): P | undefined => list.reduce<P | undefined>((a, b) => (a && a.sizeBytes >= b.sizeBytes ? a : b), undefined);
  return largest(parts.filter((p) => p.kind === 'linux' || p.kind === 'windows')) ?? largest(parts.filter((p) => p.kind === 'efi'));
}

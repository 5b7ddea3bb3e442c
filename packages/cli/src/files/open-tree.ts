/*
 * From `REF[:DISK]` and an optional partition number to an open guest filesystem: the vDisk's
 * size from the node, its partition table (MBR or GPT) and each partition's filesystem probed
 * from a few KiB read through the node, then ext2fs or fatfs on the chosen one.
 */
import {
  defaultDataPartition,
  FailedPreconditionError,
  formatBytes,
  NotFoundError,
  parseDiskRef,
  parseRef,
  PARTITION_TABLE_BYTES,
  probeFilesystem,
  PROBE_BYTES,
  readPartitionTable,
  VmferryError,
  type BlockLayout,
  type FilesystemKind,
  type PartitionKind,
} from '@vmferry/core';
import type { StorageNodeClient } from '@vmferry/grpc-edge';
import { NodeDisk } from './node-disk.js';
import { openExtTree } from './ext-tree.js';
import { openFatTree } from './fat-tree.js';
import type { FileTree } from './file-tree.js';

/** A partition (number 0: the whole vDisk, which has no partition table) and what it holds. */
export interface PartitionInfo {
  readonly number: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
  /** MBR type byte or GPT type GUID; '' for the whole disk. */
  readonly type: string;
  readonly kind: PartitionKind | 'whole-disk';
  readonly name: string;
  readonly filesystem: FilesystemKind;
}

export interface DiskLayout {
  readonly disk: NodeDisk;
  readonly scheme: 'mbr' | 'gpt' | 'none';
  readonly partitions: readonly PartitionInfo[];
}

export interface OpenedTree {
  readonly tree: FileTree;
  readonly disk: NodeDisk;
  readonly partition: PartitionInfo;
  /** "web@s1 vDisk 0 partition 2", for messages. */
  readonly where: string;
}

async function diskLayout(client: StorageNodeClient, ref: string, diskIndex: number): Promise<BlockLayout> {
  const parsed = parseRef(ref);
  const disks = parsed.snapshot === undefined ? (await client.getVm(parsed.vm)).disks : (await client.getSnapshot(ref)).disks;
  const disk = disks.find((d) => d.index === diskIndex);
  if (!disk)
    throw new NotFoundError(
      'disk',
      `${ref}:${diskIndex}`,
      `${ref} has no vDisk ${diskIndex} (it has ${disks.length}: ${disks.map((d) => d.index).join(', ')})`,
    );
  return { size: disk.size, blockSize: disk.blockSize, gridOffset: disk.gridOffset };
}

async function readAt(disk: NodeDisk, offset: number, length: number): Promise<Buffer> {
  const n = Math.max(0, Math.min(length, disk.target.size - offset));
  const buf = Buffer.alloc(n);
  if (n > 0) await disk.read(buf, 0, n, offset);
  return buf;
}

/** The vDisk's partitions with the filesystem found in each (reads a few KiB per partition). */
export async function readLayout(client: StorageNodeClient, text: string): Promise<DiskLayout> {
  const { ref, diskIndex } = parseDiskRef(text);
  const disk = new NodeDisk(client, { ref, diskIndex, ...(await diskLayout(client, ref, diskIndex)) });
  const table = readPartitionTable(await readAt(disk, 0, PARTITION_TABLE_BYTES));
  if (table.scheme === 'none') {
    const fs = probeFilesystem(await readAt(disk, 0, PROBE_BYTES));
    return {
      disk,
      scheme: 'none',
      partitions: [{ number: 0, startBytes: 0, sizeBytes: disk.target.size, type: '', kind: 'whole-disk', name: '', filesystem: fs }],
    };
  }
  const partitions: PartitionInfo[] = [];
  for (const p of table.partitions) {
    const inside = p.startBytes + p.sizeBytes <= disk.target.size;
    // An extended partition's first sector is a table, not a filesystem; an entry past the disk's end is not read.
    const fs = inside && p.kind !== 'extended' ? probeFilesystem(await readAt(disk, p.startBytes, Math.min(PROBE_BYTES, p.sizeBytes))) : 'unknown';
    partitions.push({ ...p, filesystem: fs });
  }
  return { disk, scheme: table.scheme, partitions };
}

/** "1 efi 10 MiB fat, 2 linux 48.8 MiB ext": what a person needs to pick --partition. */
export function describePartitions(layout: DiskLayout): string {
  if (layout.partitions.length === 0) return `no partitions in its ${layout.scheme.toUpperCase()} table`;
  return layout.partitions
    .map(
      (p) =>
        `${p.number === 0 ? 'whole disk' : `${p.number} ${p.kind} (type ${p.type})`} ${formatBytes(p.sizeBytes)} ${p.filesystem === 'unknown' ? 'no known filesystem' : p.filesystem}`,
    )
    .join('; ');
}

const LAYOUT_HINTS: Partial<Record<FilesystemKind, string>> = {
  lvm: 'LVM physical volumes are not supported: export the disk and use the host’s LVM tools',
  luks: 'the partition is encrypted (LUKS)',
  ntfs: 'NTFS is not supported by file-level restore: export the disk and use ntfs-3g',
  swap: 'it is swap space',
};

function choose(layout: DiskLayout, requested: number | undefined, label: string): PartitionInfo {
  if (requested === 0)
    return {
      number: 0,
      startBytes: 0,
      sizeBytes: layout.disk.target.size,
      type: '',
      kind: 'whole-disk',
      name: '',
      filesystem: layout.partitions[0]?.number === 0 ? layout.partitions[0].filesystem : 'unknown',
    };
  if (requested !== undefined) {
    const found = layout.partitions.find((p) => p.number === requested);
    if (!found)
      throw new NotFoundError('disk', `${label} partition ${requested}`, `${label} has no partition ${requested}; found: ${describePartitions(layout)}`);
    return found;
  }
  if (layout.scheme === 'none') return layout.partitions[0] as PartitionInfo;
  const data = defaultDataPartition(layout.partitions);
  if (!data) {
    const hints = [...new Set(layout.partitions.map((p) => LAYOUT_HINTS[p.filesystem]).filter((h) => h !== undefined))];
    const why = hints.length > 0 ? `; ${hints.join('; ')}` : '';
    throw new FailedPreconditionError(
      `${label} has no Linux, Windows or EFI data partition to open; found: ${describePartitions(layout)} (pick one with --partition N)${why}`,
    );
  }
  return data;
}

/** Opens the filesystem of `text` (REF[:DISK]) at partition `requested` (default: the largest data partition). */
export async function openTree(client: StorageNodeClient, text: string, requested?: number): Promise<OpenedTree> {
  const layout = await readLayout(client, text);
  const label = `${layout.disk.target.ref} vDisk ${layout.disk.target.diskIndex}`;
  const partition = choose(layout, requested, label);
  const where = partition.number === 0 ? label : `${label} partition ${partition.number}`;
  if (partition.startBytes + partition.sizeBytes > layout.disk.target.size) {
    throw new VmferryError(
      'data-loss',
      `${where} runs past the end of the vDisk (${partition.startBytes + partition.sizeBytes} > ${layout.disk.target.size} bytes): the partition table is damaged`,
    );
  }
  const fs = requested === 0 ? probeFilesystem(await readAt(layout.disk, 0, PROBE_BYTES)) : partition.filesystem;
  const opened = { ...partition, filesystem: fs };
  if (fs === 'ext') return { tree: await openExtTree(layout.disk, partition.startBytes, where), disk: layout.disk, partition: opened, where };
  if (fs === 'fat')
    return { tree: await openFatTree(layout.disk, partition.startBytes, partition.sizeBytes, where), disk: layout.disk, partition: opened, where };
  const hint = LAYOUT_HINTS[fs];
  throw new FailedPreconditionError(
    `${where} holds ${fs === 'unknown' ? 'no filesystem vmferry can read' : `${fs}, which vmferry cannot read`}${hint ? ` (${hint})` : ''}; partitions found: ${describePartitions(layout)}`,
  );
}

/*
 * Which filesystem (or other layout) starts at a partition, from its first bytes. Pure; the
 * magic numbers and their offsets are those of each format's superblock or boot sector.
 */

/** Bytes of a partition's start probeFilesystem needs (btrfs's superblock sits at 64 KiB). */
export const PROBE_BYTES = 68 * 1024;

/** `ext`: ext2/3/4; `fat`: FAT12/16/32. The rest are recognised so an error can name them. */
export type FilesystemKind = 'ext' | 'fat' | 'ntfs' | 'exfat' | 'xfs' | 'btrfs' | 'lvm' | 'luks' | 'swap' | 'mdraid' | 'unknown';

const ascii = (b: Uint8Array, at: number, text: string): boolean => {
  if (at + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
};

/** True for a FAT boot sector: jump instruction, 0x55AA, a power-of-two sector size and cluster. */
function isFatBootSector(b: Uint8Array): boolean {
  if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return false;
  if (!(b[0] === 0xeb || b[0] === 0xe9)) return false;
  const bytesPerSector = (b[11] ?? 0) | ((b[12] ?? 0) << 8);
  const sectorsPerCluster = b[13] ?? 0;
  const fats = b[16] ?? 0;
  const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  return [512, 1024, 2048, 4096].includes(bytesPerSector) && pow2(sectorsPerCluster) && fats >= 1 && fats <= 2;
}

/** The filesystem whose superblock starts `head` (a partition's first PROBE_BYTES). */
export function probeFilesystem(head: Uint8Array): FilesystemKind {
  if (head.length >= 1024 + 58 && head[1024 + 56] === 0x53 && head[1024 + 57] === 0xef) return 'ext';
  if (ascii(head, 3, 'NTFS    ')) return 'ntfs';
  if (ascii(head, 3, 'EXFAT   ')) return 'exfat';
  if (ascii(head, 0, 'XFSB')) return 'xfs';
  if (ascii(head, 65536 + 64, '_BHRfS_M')) return 'btrfs';
  if (ascii(head, 512, 'LABELONE') || ascii(head, 0, 'LABELONE')) return 'lvm';
  if (ascii(head, 0, 'LUKS\xba\xbe')) return 'luks';
  if (ascii(head, 4096 - 10, 'SWAPSPACE2') || ascii(head, 4096 - 10, 'SWAP-SPACE')) return 'swap';
  if (head.length >= 4096 + 4 && head[4096] === 0xfc && head[4097] === 0x4e && head[4098] === 0x2b && head[4099] === 0xa9) return 'mdraid';
  if (isFatBootSector(head)) return 'fat';
  return 'unknown';
}

/** The kinds file-level restore can read. */
export const READABLE_FILESYSTEMS: readonly FilesystemKind[] = ['ext', 'fat'];

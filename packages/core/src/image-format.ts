/**
 * Disk image formats a user may hand to `vm import` by mistake: their bytes are a container
 * (headers, allocation tables, compressed clusters), not the disk, so importing them as raw
 * would store a disk the guest cannot boot. Recognised by the magic numbers the formats'
 * specifications put at fixed offsets; the names are qemu-img's `-f` names.
 */

/** A container format vmferry refuses to import as raw (qemu-img can convert each). */
export type ImageFormat = 'qcow2' | 'qcow' | 'vmdk' | 'vhdx' | 'vpc' | 'vdi';

export const IMAGE_FORMATS: readonly ImageFormat[] = ['qcow2', 'qcow', 'vmdk', 'vhdx', 'vpc', 'vdi'];

/** How many bytes from the start and from the end `detectImageFormat` needs. */
export const IMAGE_HEAD_BYTES = 4096;
export const IMAGE_TAIL_BYTES = 512;

/** Whether `b` holds the ASCII `text` at offset `at`. */
function ascii(b: Uint8Array, at: number, text: string): boolean {
  if (at + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Pure: the container format whose magic `head` (the file's first bytes) or `tail` (its last
 * 512) carries, or undefined for anything else (raw disks, partition tables, filesystems).
 */
export function detectImageFormat(head: Uint8Array, tail: Uint8Array): ImageFormat | undefined {
  // QEMU copy-on-write: "QFI\xfb", then a big-endian version (1: qcow, 2 or 3: qcow2).
  if (head.length >= 8 && head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb) {
    const version = ((head[4] ?? 0) << 24) | ((head[5] ?? 0) << 16) | ((head[6] ?? 0) << 8) | (head[7] ?? 0);
    return version === 1 ? 'qcow' : 'qcow2';
  }
  // VMware: a sparse or stream-optimised extent ("KDMV"), or a text descriptor file.
  if (ascii(head, 0, 'KDMV') || ascii(head, 0, '# Disk DescriptorFile')) return 'vmdk';
  // Hyper-V VHDX: the file type identifier "vhdxfile" at offset 0.
  if (ascii(head, 0, 'vhdxfile')) return 'vhdx';
  // Virtual PC / Hyper-V VHD: the "conectix" footer, copied to the start of dynamic disks.
  if (ascii(head, 0, 'conectix') || ascii(tail, Math.max(0, tail.length - 512), 'conectix')) return 'vpc';
  // VirtualBox VDI: the signature 0xbeda107f (little-endian) at offset 64.
  if (head.length >= 68 && head[64] === 0x7f && head[65] === 0x10 && head[66] === 0xda && head[67] === 0xbe) return 'vdi';
  return undefined;
}

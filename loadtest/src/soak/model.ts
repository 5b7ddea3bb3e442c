/**
 * A client's model of what it owns: its VMs, each live disk's expected bytes and every
 * snapshot the CLI reported as created. Clients never touch each other's VMs, so the model
 * is exact, except right after an operation a kill cut off (see `Pending`).
 */
import { DiskImage, MODEL_BLOCK } from './disk-image.js';
import { Rng } from '@vmferry/testkit';

/** A snapshot the CLI reported (or one found whole after an interrupted create). */
export interface SnapModel {
  readonly id: string;
  readonly image: DiskImage;
  /** Seconds into the soak when it was reported (or found) created: to place a loss in time. */
  readonly at: number;
  /** Found damaged (a loss was recorded); only its existence is checked from then on. */
  lost: boolean;
}

/** A VM (one vDisk) and what its live disk and snapshots must hold. */
export interface VmModel {
  readonly name: string;
  image: DiskImage;
  readonly gridOffset: number;
  readonly blockSize: number;
  readonly snapshots: SnapModel[];
  /** Its live disk was found damaged; it takes no more operations. */
  lost: boolean;
}

/** An operation whose outcome a kill made unknown; resolved by looking before the next one. */
export type Pending =
  | { readonly kind: 'write'; readonly vm: VmModel; readonly old: DiskImage; readonly next: DiskImage }
  | { readonly kind: 'restore'; readonly vm: VmModel; readonly old: DiskImage; readonly snap: SnapModel }
  | { readonly kind: 'snapshot'; readonly vm: VmModel; readonly image: DiskImage }
  | { readonly kind: 'snapshot-delete'; readonly vm: VmModel; readonly snap: SnapModel }
  | { readonly kind: 'vm-delete'; readonly vm: VmModel }
  | { readonly kind: 'new-vms'; readonly op: string; readonly names: readonly string[]; readonly image: DiskImage };

/** Size of a VM made with `vm create`. */
export const CREATED_DISK = 8 * 1024 * 1024;
/** Size of an imported image. */
export const IMPORTED_DISK = 4 * 1024 * 1024;

/**
 * Blocks every client draws from, so identical data lands in many VMs (dedup: one chunk,
 * many references, the case where GC must not free a chunk another VM still needs).
 */
export function sharedLibrary(seed: number): Buffer[] {
  const r = new Rng(seed ^ 0x5eed);
  return Array.from({ length: 32 }, () => r.bytes(MODEL_BLOCK));
}

/** One disk write: where and what (random, shared-library, all-zero or large). */
export function writePayload(rng: Rng, size: number, library: readonly Buffer[]): { offset: number; data: Buffer; kind: string } {
  const kind = rng.weighted({ random: 6, dup: 3, zero: 1, big: 0.5 });
  if (kind === 'dup') {
    const n = rng.int(1, 8);
    const data = Buffer.concat(Array.from({ length: n }, () => rng.pick(library)));
    return { kind, offset: rng.int(0, size / MODEL_BLOCK - n) * MODEL_BLOCK, data };
  }
  // Larger than one 4 MiB write batch sometimes, so a kill can land between two batches.
  const wanted = kind === 'big' ? rng.int(1024 * 1024, 5 * 1024 * 1024) : rng.next() < 0.5 ? rng.int(1, 8192) : rng.int(8192, 256 * 1024);
  // A big write on a small (imported) disk covers the disk, not more: a negative offset is no test.
  const len = Math.min(wanted, size);
  const data = kind === 'zero' ? Buffer.alloc(len) : rng.bytes(len);
  return { kind, offset: rng.int(0, size - len), data };
}

/** A small raw image to import: random, shared-library and zero blocks. */
export function importImage(rng: Rng, library: readonly Buffer[]): Buffer {
  const blocks = Array.from({ length: IMPORTED_DISK / MODEL_BLOCK }, () => {
    const k = rng.weighted({ random: 5, dup: 3, zero: 2 });
    return k === 'random' ? rng.bytes(MODEL_BLOCK) : k === 'dup' ? rng.pick(library) : Buffer.alloc(MODEL_BLOCK);
  });
  return Buffer.concat(blocks);
}

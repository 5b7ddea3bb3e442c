import { blake3 } from '@napi-rs/blake-hash';

/** A chunk's name: BLAKE3-256 of its uncompressed bytes, as 32 raw bytes. */
export type Fingerprint = Buffer;

export const FINGERPRINT_BYTES = 32;

/**
 * The fingerprint of an all-zero block or subtree: a hole. Never stored; readers produce zeros.
 * (No BLAKE3 output is all zeros in practice, so this cannot collide with real content.)
 */
export const HOLE: Fingerprint = Buffer.alloc(FINGERPRINT_BYTES);

export function fingerprint(data: Uint8Array): Fingerprint {
  return blake3(data);
}

export function isHole(fp: Uint8Array): boolean {
  return fp.length === FINGERPRINT_BYTES && HOLE.equals(fp);
}

export function toHex(fp: Uint8Array): string {
  return Buffer.from(fp.buffer, fp.byteOffset, fp.byteLength).toString('hex');
}

/** A short, human form of a fingerprint for messages and tables. */
export function shortId(fp: Uint8Array | string): string {
  return (typeof fp === 'string' ? fp : toHex(fp)).slice(0, 12);
}

const HEX_FP = /^[0-9a-f]{64}$/;

export function fromHex(hex: string): Fingerprint {
  if (!HEX_FP.test(hex)) throw new TypeError(`not a fingerprint: '${hex.slice(0, 70)}'`);
  return Buffer.from(hex, 'hex');
}

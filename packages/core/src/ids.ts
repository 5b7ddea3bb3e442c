import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastMs = -1;
let sequence = 0;
/** The largest sequence number 4 base32 digits hold (2^20 - 1). */
const MAX_SEQUENCE = 32 ** 4 - 1;

function base32(value: number, digits: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < digits; i++) {
    out = CROCKFORD[v % 32] + out;
    v = Math.floor(v / 32);
  }
  return out;
}

/**
 * A sortable, unique id (ULID-like): 48-bit millisecond time, a 20-bit per-millisecond
 * sequence, then 60 random bits, in Crockford base32, 26 characters. Ids made later in this
 * process sort after ids made earlier, even within one millisecond, which snapshot listings
 * rely on.
 */
export function newId(nowMs: number = Date.now()): string {
  let ms = Math.max(nowMs, lastMs);
  sequence = ms === lastMs ? sequence + 1 : 0;
  if (sequence > MAX_SEQUENCE) {
    // The 4-digit sequence would wrap and sort before earlier ids: borrow the next millisecond.
    ms = lastMs + 1;
    sequence = 0;
  }
  lastMs = ms;
  const rnd = randomBytes(12);
  let tail = '';
  for (let i = 0; i < 12; i++) tail += CROCKFORD[(rnd[i] ?? 0) % 32];
  return base32(ms, 10) + base32(sequence, 4) + tail;
}

/** True for strings shaped like ids made by newId. */
export function isId(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(text);
}

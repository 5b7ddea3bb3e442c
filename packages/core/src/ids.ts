import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The largest sequence number 4 base32 digits hold (2^20 - 1). */
const MAX_SEQUENCE = 32 ** 4 - 1;

function base32(value: number, digits: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < digits; i++) {
    out = `${CROCKFORD[v % 32] ?? ''}${out}`;
    v = Math.floor(v / 32);
  }
  return out;
}

export interface IdSourceOptions {
  /** The clock ids are stamped with; default Date.now. */
  readonly now?: () => number;
  /** `n` random bytes; default crypto.randomBytes. */
  readonly random?: (n: number) => Uint8Array;
}

/**
 * Makes sortable, unique ids (ULID-like): 48-bit millisecond time, a 20-bit per-millisecond
 * sequence, then 60 random bits, in Crockford base32, 26 characters. Ids one source makes
 * later sort after ids it made earlier, even within one millisecond or when the clock steps
 * back, which snapshot listings rely on: so one process (one engine) uses one source, made
 * by its composition root.
 */
export class IdSource {
  private lastMs = -1;
  private sequence = 0;
  private readonly now: () => number;
  private readonly random: (n: number) => Uint8Array;

  constructor(options: IdSourceOptions = {}) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? randomBytes;
  }

  /** The next id: after every id this source made before. */
  next(): string {
    let ms = Math.max(this.now(), this.lastMs);
    this.sequence = ms === this.lastMs ? this.sequence + 1 : 0;
    if (this.sequence > MAX_SEQUENCE) {
      // The 4-digit sequence would wrap and sort before earlier ids: borrow the next millisecond.
      ms = this.lastMs + 1;
      this.sequence = 0;
    }
    this.lastMs = ms;
    const rnd = this.random(12);
    let tail = '';
    for (let i = 0; i < 12; i++) tail += CROCKFORD[(rnd[i] ?? 0) % 32] ?? '';
    return base32(ms, 10) + base32(this.sequence, 4) + tail;
  }
}

/** True for strings shaped like ids made by an IdSource. */
export function isId(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(text);
}

/*
 * Page sets uploaded by peer sites for packed transfers (the 8-byte hashes of the 4 KiB pages
 * a peer already holds), kept in memory for a session, by token, for the same peer only.
 */
import { randomUUID } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError, PAGE_HASH_BYTES } from '@vmferry/core';

/** Largest page set a peer may upload (8 bytes each: 128 MiB), about 64 GiB of base data. */
const MAX_PAGE_SET = 16 * 1024 * 1024;
const PAGE_SET_TTL_MS = 30 * 60 * 1000;

/**
 * Reads concatenated page hashes into a set. Throws InvalidArgumentError for a part that is
 * not whole hashes or a set larger than MAX_PAGE_SET.
 */
export async function collectPageSet(parts: AsyncIterable<Buffer>): Promise<Set<string>> {
  const set = new Set<string>();
  for await (const hashes of parts) {
    if (hashes.length % PAGE_HASH_BYTES !== 0) throw new InvalidArgumentError('page hashes are 8 bytes each');
    for (let o = 0; o < hashes.length; o += PAGE_HASH_BYTES) set.add(hashes.toString('hex', o, o + PAGE_HASH_BYTES));
    if (set.size > MAX_PAGE_SET) throw new InvalidArgumentError(`a page set holds at most ${MAX_PAGE_SET} pages`);
  }
  return set;
}

export class PageSets {
  private readonly sets = new Map<string, { site: string; set: Set<string>; expires: number }>();

  /** Keeps `set` for `site`; returns its token. Drops expired sets. */
  add(site: string, set: Set<string>): string {
    const now = Date.now();
    for (const [t, v] of this.sets) if (v.expires < now) this.sets.delete(t);
    const token = randomUUID();
    this.sets.set(token, { site, set, expires: now + PAGE_SET_TTL_MS });
    return token;
  }

  /** The set behind `token`, if `site` uploaded it; throws FailedPreconditionError otherwise. */
  get(token: string, site: string): Set<string> {
    const v = this.sets.get(token);
    if (!v || v.site !== site || v.expires < Date.now()) {
      throw new FailedPreconditionError('unknown or expired page set: open a new one (OpenPageSet)');
    }
    v.expires = Date.now() + PAGE_SET_TTL_MS;
    return v.set;
  }
}

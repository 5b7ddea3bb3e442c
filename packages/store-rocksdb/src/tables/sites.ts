/* Peer site records ('S' keys, keys.ts), JSON values; few and small, so read by a scan. */
import type { SiteRecord } from '@vmferry/core';
import type { Database } from '../database.js';
import { prefixRange, SITE_PREFIX, siteKey } from '../keys.js';

/** The site table. Writes are durable; an empty name throws InvalidArgumentError. */
export class SiteTable {
  constructor(private readonly db: Database) {}

  async put(site: SiteRecord): Promise<void> {
    await this.db.commit((b) => b.tryPut(siteKey(site.name), Buffer.from(JSON.stringify(site))), { durable: true });
  }

  async list(): Promise<SiteRecord[]> {
    const out: SiteRecord[] = [];
    for await (const { value } of this.db.entries(prefixRange(SITE_PREFIX))) out.push(JSON.parse(value.toString()) as SiteRecord);
    return out;
  }

  async delete(name: string): Promise<void> {
    await this.db.commit((b) => b.tryDelete(siteKey(name)), { durable: true });
  }
}

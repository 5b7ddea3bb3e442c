import { InvalidArgumentError, NotFoundError, parseCalendar, validateVmName, type SiteRecord } from '@vmferry/core';
import type { EngineContext } from './context.js';

const ADDRESS = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** Validates a site record; every bad field is named at once. */
export function validateSite(site: SiteRecord): SiteRecord {
  const problems: string[] = [];
  try {
    validateVmName(site.name);
  } catch {
    problems.push(`site name '${site.name}' must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  if (site.replicationAddress && !ADDRESS.test(site.replicationAddress)) problems.push(`replication address '${site.replicationAddress}' must be HOST:PORT`);
  if (site.nodeAddress && !ADDRESS.test(site.nodeAddress)) problems.push(`node address '${site.nodeAddress}' must be HOST:PORT`);
  if (!site.replicationAddress && !site.nodeAddress && !site.identity) {
    problems.push(
      'a site needs a replication address (to pull from it), a node address (to replicate to it) or a certificate identity (to let it pull from here)',
    );
  }
  // The replicator parses the calendar on every transfer: refuse a bad one here, not there.
  if (site.rate) {
    try {
      parseCalendar(site.rate);
    } catch (e) {
      problems.push(`rate: ${(e as Error).message}`);
    }
  }
  if (site.replicationAddress && !site.identity) problems.push('a site with a replication address needs its certificate identity (--identity)');
  if (problems.length > 0) throw new InvalidArgumentError(`bad site '${site.name}': ${problems.join('; ')}`);
  return site;
}

export async function putSite(ctx: EngineContext, site: SiteRecord): Promise<SiteRecord> {
  validateSite(site);
  await ctx.catalog.sites.put(site);
  return site;
}

export async function listSites(ctx: EngineContext): Promise<SiteRecord[]> {
  return ctx.catalog.sites.list();
}

export async function deleteSite(ctx: EngineContext, name: string): Promise<SiteRecord> {
  const found = (await listSites(ctx)).find((s) => s.name === name);
  if (!found) throw new NotFoundError('site', name, `site '${name}' is not known here`);
  await ctx.catalog.sites.delete(name);
  return found;
}

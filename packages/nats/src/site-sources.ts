/*
 * Per-site coordination: every site runs its own NATS server with JetStream (its domain is the
 * site's name), and the servers are joined by leaf-node links that carry no vmferry subject
 * (deploy/nats denies `vmferry.>` on them, and JetStream keeps `$KV.>` and `$JS.API.>` local
 * by itself). What one site must know of another arrives by **stream sourcing** — JetStream
 * copying messages from a stream in the peer's domain into the local stream, resuming from
 * where it stopped after a link or site outage:
 *
 *   local stream        sources from each peer P           which is
 *   VMFERRY_JOBS        vmferry.jobs.replicate.<here>      replication jobs addressed to us
 *   VMFERRY_EVENTS      vmferry.events.<P>.>               the events P published
 *   KV registry         $KV.<registry>.<P>.>               P's VMs and its site entry
 *   KV state            $KV.<state>.rpo.*.<P>              replicas P holds of our VMs
 *
 * Each filter takes only what P itself published, so nothing comes back to where it began
 * (no echo between two sites sourcing each other). The jobs stream is a work queue at both
 * ends: a sourced job leaves P's stream once it is stored here, and a job published twice
 * under one message id is stored once (the duplicate window holds for sourced messages too),
 * so a site's return neither loses nor doubles a job. Snapshot jobs never cross: each site's
 * own scheduler pair schedules its own VMs.
 *
 * Policies are configuration, not a flow: the CLI writes them to every site (see
 * `writeEverywhere`), so each site schedules from its own copy when the others are gone.
 */
import { jetstream, type StreamSource } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Coordination } from './coordination.js';
import { EVENTS_STREAM, eventsOf, JOBS_STREAM, POLICY_BUCKET, REGISTRY_BUCKET, replicateJobSubject, STATE_BUCKET } from './names.js';

/** How long a write to a peer site's policies waits before that site counts as unreachable. */
const PEER_WRITE_TIMEOUT_MS = 3000;

const kvStream = (bucket: string): string => `KV_${bucket}`;

/** The sources each local stream takes from peer `p`, for a node at site `here`. */
function sourcesFor(here: string, peers: readonly string[]): Map<string, StreamSource[]> {
  const of = (name: string, filter: (p: string) => string): StreamSource[] => peers.map((p) => ({ name, domain: p, filter_subject: filter(p) }));
  return new Map([
    [JOBS_STREAM, of(JOBS_STREAM, () => replicateJobSubject(here))],
    [EVENTS_STREAM, of(EVENTS_STREAM, eventsOf)],
    [kvStream(REGISTRY_BUCKET), of(kvStream(REGISTRY_BUCKET), (p) => `$KV.${REGISTRY_BUCKET}.${p}.>`)],
    [kvStream(STATE_BUCKET), of(kvStream(STATE_BUCKET), (p) => `$KV.${STATE_BUCKET}.rpo.*.${p}`)],
  ]);
}

/** The peer site a configured source reads from (its `$JS.<site>.API` prefix). */
function siteOfSource(s: { external?: { api?: string } | undefined }): string | undefined {
  const m = /^\$JS\.([^.]+)\.API$/.exec(s.external?.api ?? '');
  return m?.[1];
}

/**
 * Makes the local streams source exactly `peers` (other sites' names; this site's own is
 * ignored). Idempotent: a stream already set that way is not touched. Does nothing on a
 * shared coordination plane (`c.site` undefined), where every site sees every stream anyway.
 * Returns whether any stream changed.
 */
export async function syncPeerSources(c: Coordination, peers: readonly string[]): Promise<boolean> {
  const here = c.site;
  if (here === undefined) return false;
  const wanted = [...new Set(peers)].filter((p) => p !== here).sort();
  let changed = false;
  for (const [stream, sources] of sourcesFor(here, wanted)) {
    const info = await c.jsm.streams.info(stream);
    const have = (info.config.sources ?? []).map((s) => `${siteOfSource(s) ?? s.name}|${s.filter_subject ?? ''}`).sort();
    const want = sources.map((s) => `${s.domain ?? ''}|${s.filter_subject ?? ''}`).sort();
    if (have.join(',') === want.join(',')) continue;
    await c.jsm.streams.update(stream, { sources });
    changed = true;
  }
  return changed;
}

/** A peer site as this site's coordination plane sees it. */
export interface PeerLink {
  readonly site: string;
  /** When the last message or heartbeat from the peer's registry arrived (ms since epoch). */
  readonly lastHeardMs: number;
  readonly reachable: boolean;
  /** Registry entries the peer published that have not arrived yet. */
  readonly lag: number;
  readonly error?: string;
}

/**
 * A source that has heard nothing (not even a heartbeat, sent about every second) for this
 * long counts as unreachable.
 */
export const PEER_SILENT_MS = 10_000;

/** The peers this site sources from, with when each was last heard (from the registry's sources). */
export async function peerLinks(c: Coordination, now = Date.now()): Promise<PeerLink[]> {
  if (c.site === undefined) return [];
  const info = await c.jsm.streams.info(kvStream(REGISTRY_BUCKET));
  const out: PeerLink[] = [];
  for (const s of info.sources ?? []) {
    // The server reports `external` for a source in another domain; the client's type omits it.
    const site = siteOfSource(s as { external?: { api?: string } });
    if (site === undefined) continue;
    // `active` is nanoseconds since the source last delivered; negative when it never did.
    const silentMs = s.active < 0 ? Number.POSITIVE_INFINITY : s.active / 1e6;
    const lastHeardMs = Number.isFinite(silentMs) ? Math.round(now - silentMs) : 0;
    const error = s.error?.description;
    out.push({ site, lastHeardMs, reachable: silentMs < PEER_SILENT_MS && error === undefined, lag: s.lag, ...(error ? { error } : {}) });
  }
  return out.sort((a, b) => a.site.localeCompare(b.site));
}

/** The peer sites this site's streams source from (as configured, reachable or not). */
export async function configuredPeers(c: Coordination): Promise<string[]> {
  if (c.site === undefined) return [];
  const info = await c.jsm.streams.info(kvStream(REGISTRY_BUCKET));
  return (info.config.sources ?? []).map(siteOfSource).filter((s): s is string => s !== undefined);
}

/** Where a policy change was stored. */
export interface PolicyWrite {
  readonly written: readonly string[];
  readonly failed: readonly { readonly site: string; readonly error: string }[];
}

/**
 * Applies one policy change to this site's policies and then to every peer site's (through
 * the peer's JetStream domain, over the leaf link), so each site schedules from its own copy
 * when the others are gone. The local write must succeed (else this throws and no peer is
 * touched); a peer that cannot be reached is reported, for the operator to repeat the change
 * once it is back. On a shared plane there is one copy.
 */
export async function writePolicyEverywhere(c: Coordination, write: (kv: KV) => Promise<unknown>): Promise<PolicyWrite> {
  await write(c.policies);
  const here = c.site ?? 'this site';
  const written = [here];
  const failed: { site: string; error: string }[] = [];
  for (const site of await configuredPeers(c)) {
    try {
      const kv = await new Kvm(jetstream(c.nc, { domain: site, timeout: PEER_WRITE_TIMEOUT_MS })).open(POLICY_BUCKET);
      await write(kv);
      written.push(site);
    } catch (e) {
      failed.push({ site, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return { written, failed };
}

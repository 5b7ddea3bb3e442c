/*
 * One pull of one snapshot from a peer site into the local node, as both the CLI's one-shot
 * `vmferry replicate` and the replicator service run it: find the source in the local node's
 * site records, shape the link's bytes by its calendar, open an mTLS client of its
 * replication endpoint, run the session, and name a certificate problem when that is why it
 * failed.
 */
import { NotFoundError, type SiteRecord, type SourcePort, type TargetPort } from '@vmferry/core';
import { connectReplicationSource, storageNodeTarget, type StorageNodeClient, type TlsFiles } from '@vmferry/grpc-edge';
import { LinkThrottle } from './link-throttle.js';
import type { PageIndexCache } from './page-index.js';
import { explainPeerFailure } from './peer-errors.js';
import { planReplication, type Plan } from './plan.js';
import { replicateSnapshot, type Progress, type SessionResult } from './session.js';

/** A client of the local storage node (the edge's). */
export type NodeClient = StorageNodeClient;

export interface ReplicateFromSiteOptions {
  /** The local (target) site's storage node, and its address (named in messages). */
  readonly node: NodeClient;
  readonly nodeAddress: string;
  /** The local site: the replica's home and the identity this pull presents. */
  readonly localSite: string;
  readonly sourceSite: string;
  /** VM@SNAPSHOT or VM@latest, as the source knows it. */
  readonly ref: string;
  readonly tls: TlsFiles;
  /** The local address to pull from, given the source's site record; undefined: any. */
  readonly bindFor?: (source: SiteRecord) => string | undefined;
  readonly streams?: number;
  readonly onProgress?: (p: Progress) => void;
  /** The local node as a replication target; default: one made from `node` for this pull. */
  readonly target?: TargetPort;
  /** Base page indexes kept across pulls into `target` (the service keeps one per node client). */
  readonly pageIndexes?: PageIndexCache;
}

/** The site records the local node holds. */
export async function siteRecords(node: NodeClient): Promise<SiteRecord[]> {
  return node.listSites();
}

/** What a pull and a plan both need: the local node, the source site, the ref, TLS. */
export type SiteCallOptions = Pick<ReplicateFromSiteOptions, 'node' | 'nodeAddress' | 'localSite' | 'sourceSite' | 'ref' | 'tls' | 'bindFor' | 'target'>;

/**
 * Finds `sourceSite` in the local node's records, opens an mTLS client of its replication
 * endpoint and runs `fn`; a failure TLS explains is rethrown named (which site, which
 * certificate, what to do).
 * @throws NotFoundError when the local node has no record of `sourceSite`.
 */
async function withSourceSite<T>(o: SiteCallOptions, fn: (src: SiteRecord, source: SourcePort, target: TargetPort) => Promise<T>): Promise<T> {
  const src = (await siteRecords(o.node)).find((s) => s.name === o.sourceSite);
  if (!src)
    throw new NotFoundError(
      'site',
      o.sourceSite,
      `site '${o.sourceSite}' is not known at site ${o.localSite} (vmferry --node ${o.nodeAddress} site add ${o.sourceSite} …)`,
    );
  try {
    const source = connectReplicationSource(src, o.tls, o.bindFor?.(src));
    try {
      return await fn(src, source, o.target ?? storageNodeTarget(o.node));
    } finally {
      source.close();
    }
  } catch (e) {
    throw explainPeerFailure(e, { peer: o.sourceSite, local: o.localSite, identity: src.identity, tls: o.tls }) ?? e;
  }
}

/**
 * Pulls `ref` from `sourceSite` into the local node.
 * @throws NotFoundError when the local node has no record of `sourceSite`; a
 *   permission-denied VmferryError naming the certificate when TLS is why the pull failed;
 *   otherwise what the session threw.
 */
export function replicateFromSite(o: ReplicateFromSiteOptions): Promise<SessionResult> {
  return withSourceSite(o, async (src, source, target) => {
    // The calendar is re-read from the site record every second: `link set-rate` reaches a running pull.
    const throttle = new LinkThrottle(src.rate, async () => (await siteRecords(o.node)).find((s) => s.name === o.sourceSite)?.rate ?? '').start();
    try {
      return await replicateSnapshot({
        source,
        target,
        ...(o.pageIndexes ? { pageIndexes: o.pageIndexes } : {}),
        sourceSite: o.sourceSite,
        ref: o.ref,
        ...(o.streams === undefined ? {} : { streams: o.streams }),
        bucket: throttle.bucket,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
    } finally {
      throttle.stop();
    }
  });
}

/**
 * The pre-flight plan of pulling `ref` from `sourceSite`: what would move, and how long under
 * the link's calendar (see planReplication). Moves nothing.
 * @throws as replicateFromSite.
 */
export function planFromSite(o: SiteCallOptions): Promise<Plan> {
  return withSourceSite(o, (src, source, target) => planReplication({ source, target, ref: o.ref, calendar: src.rate }));
}

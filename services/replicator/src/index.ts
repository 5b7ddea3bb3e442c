export { replicateSnapshot, DEFAULT_STREAMS, type Progress, type SessionOptions, type SessionResult, type Phase } from './session.js';
export { planReplication, type Plan } from './plan.js';
export { TokenBucket } from './token-bucket.js';
export type { SourcePort, TargetPort, PutStream } from './ports.js';
export { LinkThrottle } from './link-throttle.js';
export { PageIndexCache } from './page-index.js';
export { loadConfig, configFromEnv, DEFAULT_NODE_ADDRESS, DEFAULT_SESSIONS_PER_LINK, type ReplicatorConfig } from './config.js';
export { runReplicator, type RunningReplicator } from './main.js';

// The service and the site calls load the gRPC edge, and so grpc-js. They are loaded on first
// use, so that importing this package loads no grpc-js: `runReplicator` starts telemetry
// before the service loads, and the gRPC instrumentation can hook grpc-js as it loads.
import type { ReplicatorServiceOptions } from './service.js';
import type { ReplicateFromSiteOptions, SiteCallOptions } from './replicate-from-site.js';
import type { SessionResult } from './session.js';
import type { Plan } from './plan.js';
export type { ReplicatorServiceOptions, ReplicateFromSiteOptions, SiteCallOptions };
export type { PeerContext } from './peer-errors.js';

/** Starts consuming the site's replication jobs (see service.ts). */
export async function startReplicatorService(o: ReplicatorServiceOptions): Promise<{ stop(): Promise<void> }> {
  return (await import('./service.js')).startReplicatorService(o);
}

/** Pulls one snapshot from a peer site into the local node (see replicate-from-site.ts). */
export async function replicateFromSite(o: ReplicateFromSiteOptions): Promise<SessionResult> {
  return (await import('./replicate-from-site.js')).replicateFromSite(o);
}

/** What pulling one snapshot from a peer site would move, and how long (see replicate-from-site.ts). */
export async function planFromSite(o: SiteCallOptions): Promise<Plan> {
  return (await import('./replicate-from-site.js')).planFromSite(o);
}

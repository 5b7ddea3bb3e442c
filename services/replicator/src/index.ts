export { replicateSnapshot, DEFAULT_STREAMS, type Progress, type SessionOptions, type SessionResult, type Phase } from './session.js';
export { planReplication, type Plan } from './plan.js';
export { TokenBucket } from './token-bucket.js';
export type { SourcePort, TargetPort, PutStream } from './ports.js';
export { LinkThrottle } from './link-throttle.js';
export { startReplicatorService, type ReplicatorServiceOptions } from './service.js';
export { explainPeerFailure, type PeerContext } from './peer-errors.js';
export { PageIndexCache } from './page-index.js';

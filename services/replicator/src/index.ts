export { replicateSnapshot, DEFAULT_STREAMS, type Progress, type SessionOptions, type SessionResult, type Phase } from './session.js';
export { planReplication, type Plan } from './plan.js';
export { TokenBucket } from './token-bucket.js';
export { sourceClient, nodeClient, unary, type TlsFiles } from './clients.js';
export { grpcSource, grpcTarget } from './grpc-ports.js';
export { boundTarget } from './bind-resolver.js';
export type { SourcePort, TargetPort, PutStream } from './ports.js';
export { LinkThrottle } from './link-throttle.js';
export { startReplicatorService, type ReplicatorServiceOptions } from './service.js';

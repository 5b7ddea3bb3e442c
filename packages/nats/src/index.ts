export * from './names.js';
export * from './types.js';
export { openCoordination, DUPLICATE_WINDOW_MS, LEADER_TTL_MS, type Coordination, type CoordinationTiming } from './coordination.js';
export { publishJob, publishEvent, runWorker, backoffAfter, MAX_DELIVER, BACKOFF_MS, ACK_WAIT_MS, type WorkerHandle, type WorkerOptions } from './jobs.js';
export { classifyFailure, type FailureClass } from './retry.js';
export { LeaderLease } from './leader.js';
export { traceHeaders, contextFrom } from './trace.js';
export { HOST_PORT, SIMPLE_NAME, NATS_URL, NATS_URL_MESSAGE, natsUrlRequired, jsDomain, wholeNumber, definedEntries, parseConfig } from './config-schema.js';
export { policyInForce, readDefaultPolicy, readOverride, describeRefusal, type PolicyRefusal, type InForce } from './policy-store.js';

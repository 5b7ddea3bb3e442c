/** The client kit: a storage node's API, a peer's replication endpoint, the replication ports. */
export * from './storage-node-client.js';
export * from './storage-node-target.js';
export * from './replication-source-client.js';
export { boundTarget, BIND_SCHEME, LOCAL_ADDRESS_OPTION } from './bind-resolver.js';
export { snapshotToWire as snapshotView } from '../convert/records.js';

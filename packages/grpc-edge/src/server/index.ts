/** The server kit: the node's two gRPC services over core-typed APIs, and the wire ⇄ core records. */
export { startStorageNodeServer, MAX_RECEIVE_MESSAGE_BYTES, type StartedServer, type StorageNodeServerOptions } from './storage-node-server.js';
export { AUTHORIZATION_METADATA, type ApiAuthOptions } from './api-auth.js';
export { startReplicationSourceServer, type ServerTlsFiles } from './replication-source-server.js';
export { vmToWire, vmFromWire, snapshotToWire, snapshotFromWire, siteToWire, siteFromWire } from '../convert/records.js';
export { statsToWire, verifyReportToWire } from '../convert/reports.js';

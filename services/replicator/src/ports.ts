/**
 * What a replication session needs from the source site and from the local (target) node: the
 * core ports (packages/core/src/replication-types.ts), implemented over gRPC by the edge.
 */
export type { PutStream, SourcePort, TargetPort } from '@vmferry/core';

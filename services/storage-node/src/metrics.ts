import { metrics, type Counter, type Histogram } from '@opentelemetry/api';

/** The storage node's instruments. Without a started SDK these are no-ops. */
export interface NodeMetrics {
  readonly ingestBytes: Counter;
  readonly newChunkBytes: Counter;
  readonly storedChunkBytes: Counter;
  readonly snapshotDuration: Histogram;
}

export function createNodeMetrics(): NodeMetrics {
  const meter = metrics.getMeter('vmferry-storage-node');
  return {
    ingestBytes: meter.createCounter('vmferry.ingest.bytes', {
      description: 'Bytes written into live vDisks (before dedup and compression)',
      unit: 'By',
    }),
    newChunkBytes: meter.createCounter('vmferry.chunks.new.raw_bytes', {
      description: 'Raw bytes of chunks that were new to the store',
      unit: 'By',
    }),
    storedChunkBytes: meter.createCounter('vmferry.chunks.new.stored_bytes', {
      description: 'Stored (compressed) bytes of chunks new to the store',
      unit: 'By',
    }),
    snapshotDuration: meter.createHistogram('vmferry.snapshot.duration', {
      description: 'Time to take a snapshot',
      unit: 'ms',
    }),
  };
}

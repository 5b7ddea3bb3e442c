/*
 * NBD I/O metrics: a BlockExports decorator timing every request the NBD server makes of an
 * export. Labelled by site, op (read, write, flush, trim, zero, block_status) and export kind
 * (live: VM/DISK, snapshot: VM@SNAPSHOT/DISK), never by export name: a name per vDisk and
 * snapshot would be unbounded. Failed requests are counted with outcome="error".
 */
import { metrics, type Attributes, type Counter, type Histogram } from '@opentelemetry/api';
import type { BlockExport, BlockExports, ReadPiece, WriteOptions } from '@vmferry/core';

/** 50 µs (a cached 4 KiB read) to 10 s (a FLUSH behind a busy WAL). */
const LATENCY_BUCKETS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

interface Meters {
  readonly ops: Counter;
  readonly bytes: Counter;
  readonly latency: Histogram;
}

export function meteredExports(inner: BlockExports, site: string): BlockExports {
  const meter = metrics.getMeter('vmferry-storage-node');
  const m: Meters = {
    ops: meter.createCounter('vmferry.nbd.operations', { description: 'NBD requests served, by op, export kind and outcome' }),
    bytes: meter.createCounter('vmferry.nbd.io', { description: 'Bytes read or written over NBD (direction: read, write)', unit: 'By' }),
    latency: meter.createHistogram('vmferry.nbd.operation.duration', {
      description: 'NBD request service time in the node (excludes the network)',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    }),
  };
  return {
    list: () => inner.list(),
    open: async (name) => metered(await inner.open(name), m, { site, export_kind: name.slice(0, name.lastIndexOf('/')).includes('@') ? 'snapshot' : 'live' }),
  };
}

function metered(e: BlockExport, m: Meters, base: Attributes): BlockExport {
  const timed = async <T>(op: string, bytes: number, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    let outcome = 'error';
    try {
      const r = await run();
      outcome = 'ok';
      return r;
    } finally {
      const attrs = { ...base, op };
      m.latency.record((performance.now() - started) / 1000, attrs);
      m.ops.add(1, { ...attrs, outcome });
      if (outcome === 'ok' && bytes > 0) m.bytes.add(bytes, { ...base, direction: op });
    }
  };
  return {
    name: e.name,
    size: e.size,
    readOnly: e.readOnly,
    preferredBlockSize: e.preferredBlockSize,
    read: (offset, length) => timedRead(e.read(offset, length), length, m, base),
    write: (offset: number, data: Buffer, o: WriteOptions) => timed('write', data.length, () => e.write(offset, data, o)),
    flush: () => timed('flush', 0, () => e.flush()),
    trim: (offset, length, o) => timed('trim', 0, () => e.trim(offset, length, o)),
    zero: (offset, length, o) => timed('zero', 0, () => e.zero(offset, length, o)),
    allocation: (offset, length) => timed('block_status', 0, () => e.allocation(offset, length)),
    close: () => e.close(),
  };
}

/** A read is served as its pieces are consumed: timed from the first pull to the last. */
async function* timedRead(pieces: AsyncIterable<ReadPiece>, length: number, m: Meters, base: Attributes): AsyncGenerator<ReadPiece> {
  const started = performance.now();
  let outcome = 'error';
  try {
    yield* pieces;
    outcome = 'ok';
  } finally {
    const attrs = { ...base, op: 'read' };
    m.latency.record((performance.now() - started) / 1000, attrs);
    m.ops.add(1, { ...attrs, outcome });
    if (outcome === 'ok') m.bytes.add(length, { ...base, direction: 'read' });
  }
}

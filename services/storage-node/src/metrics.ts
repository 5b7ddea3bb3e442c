/*
 * The storage node's instruments. Without a started SDK these are no-ops.
 *
 * Names and units follow OpenTelemetry's conventions (durations in `s`, sizes in `By`); the
 * telemetry package's Prometheus endpoint appends the unit and `_total` (README, Monitoring).
 *
 * Most values are observable gauges read from the catalog at collection time rather than
 * counters kept beside it: a gauge cannot drift from what the node holds (a crash between a
 * commit and a counter update, or a restart, resets nothing that matters).
 *
 * Cardinality: only the per-VM gauges carry a `vm` label, and only for the first
 * VM_LABEL_LIMIT VMs in name order (stable across scrapes); the rest are folded into one
 * series labelled vm="_other" (counts summed, ages maximised, so an RPO alert still fires for
 * them). `vmferry_vm_label_limit` exports the limit so a dashboard can say when it applies.
 * Everything else is per site only.
 */
import { statfs } from 'node:fs/promises';
import { metrics, type BatchObservableResult, type Counter, type Histogram, type Observable } from '@opentelemetry/api';
import type { EngineContext } from './context.js';
import { computeStats } from './stats.js';

/** Per-VM series per gauge at most; override with VMFERRY_METRICS_VM_LABEL_LIMIT. */
export const DEFAULT_VM_LABEL_LIMIT = 500;
/** The label the VMs past the limit share. */
export const OTHER_VMS = '_other';
/** Space accounting walks the whole store (stats.ts): reused for this long between scrapes. */
const SPACE_MAX_AGE_MS = 300_000;
/** A scrape waits this long at most for the first walk (Prometheus' scrape timeout is 10 s by default). */
const FIRST_SPACE_WAIT_MS = 2000;

/** Snapshot durations: 10 ms (an idle VM) to 10 min (a large first fold). */
const DURATION_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface NodeMetrics {
  readonly ingestBytes: Counter;
  readonly newChunkBytes: Counter;
  readonly storedChunkBytes: Counter;
  /** Seconds. */
  readonly snapshotDuration: Histogram;
  /** Verify runs finished, by outcome (`clean`, `damaged`) and trigger (`manual`, `scheduled`). */
  readonly verifyRuns: Counter;
  /** The attributes every node series carries. */
  readonly attrs: { readonly site: string };
  /** The last verify's outcome (engine.verify sets it; observed at scrape time). */
  lastVerify?: { readonly atMs: number; readonly damaged: number; readonly seconds: number };
  /** The last GC's outcome (engine.gc sets it). */
  lastGc?: { readonly atMs: number; readonly bytesFreed: number; readonly chunksSwept: number; readonly seconds: number };
}

export function createNodeMetrics(site: string): NodeMetrics {
  const meter = metrics.getMeter('vmferry-storage-node');
  return {
    ingestBytes: meter.createCounter('vmferry.ingest', {
      description: 'Bytes written into live vDisks (before dedup and compression)',
      unit: 'By',
    }),
    newChunkBytes: meter.createCounter('vmferry.chunks.new.raw', {
      description: 'Raw bytes of chunks that were new to the store',
      unit: 'By',
    }),
    storedChunkBytes: meter.createCounter('vmferry.chunks.new.stored', {
      description: 'Stored (compressed) bytes of chunks new to the store',
      unit: 'By',
    }),
    snapshotDuration: meter.createHistogram('vmferry.snapshot.duration', {
      description: 'Time to take a snapshot (freeze, fold, commit)',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    verifyRuns: meter.createCounter('vmferry.verify.runs', {
      description: 'Verify runs finished, by outcome (clean, damaged) and trigger (manual: the API; scheduled: the policy verify job)',
    }),
    attrs: { site },
  };
}

/** The VM label limit from the environment (read once, at start-up). */
export function vmLabelLimit(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env['VMFERRY_METRICS_VM_LABEL_LIMIT'] ?? DEFAULT_VM_LABEL_LIMIT);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_VM_LABEL_LIMIT;
}

/**
 * Registers the catalog gauges for `ctx`; returns their removal (the engine closing).
 */
export function observeEngine(ctx: EngineContext, dataDir: string, limit = vmLabelLimit()): () => void {
  const meter = metrics.getMeter('vmferry-storage-node');
  const site = ctx.options.site;
  const vmSnapshots = meter.createObservableGauge('vmferry.vm.snapshots', { description: 'Snapshots a VM holds (per VM, capped: see vmferry_vm_label_limit)' });
  const vms = meter.createObservableGauge('vmferry.vms', { description: 'VMs on this node, by kind (local or replica)' });
  const snapshots = meter.createObservableGauge('vmferry.snapshots', { description: 'Snapshots on this node' });
  const replicaAge = meter.createObservableGauge('vmferry.replica.newest_age', {
    description: "Seconds since the newest snapshot a target site holds of a local VM was taken (the VM's current RPO)",
    unit: 's',
  });
  const labelLimit = meter.createObservableGauge('vmferry.vm_label_limit', { description: 'Most VMs labelled individually; the rest are vm="_other"' });
  const logical = meter.createObservableGauge('vmferry.space.logical', {
    description: "Logical bytes of the site's VMs (no dedup, no compression)",
    unit: 'By',
  });
  const verifyDamaged = meter.createObservableGauge('vmferry.verify.damaged_chunks', {
    description: 'Chunks the last verify found corrupt or missing (0: clean); absent until a verify ran',
  });
  const verifyTime = meter.createObservableGauge('vmferry.verify.last_run', { description: 'When the last verify finished (Unix time)', unit: 's' });
  const verifyDuration = meter.createObservableGauge('vmferry.verify.duration', { description: 'How long the last verify took', unit: 's' });
  const gcFreed = meter.createObservableGauge('vmferry.gc.freed', { description: 'Bytes the last GC freed', unit: 'By' });
  const gcSwept = meter.createObservableGauge('vmferry.gc.swept_chunks', { description: 'Chunks the last GC removed' });
  const gcTime = meter.createObservableGauge('vmferry.gc.last_run', { description: 'When the last GC finished (Unix time)', unit: 's' });
  const gcDuration = meter.createObservableGauge('vmferry.gc.duration', { description: 'How long the last GC took', unit: 's' });
  // The data folder's file system: the store cannot grow past it (disk-full alert).
  const fsAvail = meter.createObservableGauge('vmferry.data.filesystem.available', {
    description: "Bytes free for the node on its data folder's file system",
    unit: 'By',
  });
  const fsSize = meter.createObservableGauge('vmferry.data.filesystem.size', { description: "Size of the data folder's file system", unit: 'By' });
  const stored = meter.createObservableGauge('vmferry.space.stored', { description: 'Bytes the chunk store holds (deduplicated, compressed)', unit: 'By' });

  let space: { atMs: number; logical: number; stored: number } | undefined;
  let refreshing: Promise<void> | undefined;
  const refreshSpace = (): Promise<void> =>
    (refreshing ??= computeStats(ctx)
      .then((s) => void (space = { atMs: Date.now(), logical: s.logicalBytes, stored: s.storedBytes }))
      .catch(() => undefined)
      .finally(() => (refreshing = undefined)));

  const observe = async (r: BatchObservableResult): Promise<void> => {
    const now = Date.now();
    const all = ctx.catalog.vms().filter((v) => !v.importing);
    const sorted = [...all].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    r.observe(labelLimit, limit, { site });
    r.observe(vms, all.filter((v) => !v.replicaOf).length, { site, kind: 'local' });
    r.observe(vms, all.filter((v) => v.replicaOf).length, { site, kind: 'replica' });
    r.observe(snapshots, ctx.catalog.allSnapshots().length, { site });

    let otherSnapshots = 0;
    const otherAge = new Map<string, number>();
    // Ages are labelled by rank among local VMs, as the scheduler ranks them for their RPO
    // (rpo-series.ts), so the two sides of the RPO rule label the same VMs.
    let localRank = 0;
    for (const [i, vm] of sorted.entries()) {
      const count = ctx.catalog.snapshotCount(vm.id);
      if (i < limit) r.observe(vmSnapshots, count, { site, vm: vm.name });
      else otherSnapshots += count;
      if (vm.replicaOf) continue;
      const labelled = localRank++ < limit;
      // The source learns each target's newest complete copy from its ack (replication-bases.ts).
      for (const base of await ctx.catalog.replication.bases(vm.id)) {
        const snap = ctx.catalog.snapshot(vm.id, base.snapshotId);
        if (!snap) continue;
        const age = Math.max(0, (now - snap.createdAtMs) / 1000);
        if (labelled) r.observe(replicaAge, age, { site, vm: vm.name, target: base.site });
        else otherAge.set(base.site, Math.max(otherAge.get(base.site) ?? 0, age));
      }
    }
    if (sorted.length > limit) r.observe(vmSnapshots, otherSnapshots, { site, vm: OTHER_VMS });
    for (const [target, age] of otherAge) r.observe(replicaAge, age, { site, vm: OTHER_VMS, target });

    const v = ctx.metrics.lastVerify;
    if (v) {
      r.observe(verifyDamaged, v.damaged, { site });
      r.observe(verifyTime, v.atMs / 1000, { site });
      r.observe(verifyDuration, v.seconds, { site });
    }
    const g = ctx.metrics.lastGc;
    if (g) {
      r.observe(gcFreed, g.bytesFreed, { site });
      r.observe(gcSwept, g.chunksSwept, { site });
      r.observe(gcTime, g.atMs / 1000, { site });
      r.observe(gcDuration, g.seconds, { site });
    }
    const fs = await statfs(dataDir).catch(() => undefined);
    if (fs) {
      r.observe(fsAvail, fs.bavail * fs.bsize, { site });
      r.observe(fsSize, fs.blocks * fs.bsize, { site });
    }
    // Walking the store costs seconds on a large one: the first scrape waits up to
    // FIRST_SPACE_WAIT_MS (the gauges are absent until the walk ends), later ones get the last
    // result and start a refresh when it is older than SPACE_MAX_AGE_MS.
    if (!space) await Promise.race([refreshSpace(), new Promise((done) => setTimeout(done, FIRST_SPACE_WAIT_MS).unref())]);
    else if (now - space.atMs > SPACE_MAX_AGE_MS) void refreshSpace();
    if (space) {
      r.observe(logical, space.logical, { site });
      r.observe(stored, space.stored, { site });
    }
  };
  const observables: Observable[] = [
    vmSnapshots,
    vms,
    snapshots,
    replicaAge,
    labelLimit,
    logical,
    stored,
    verifyDamaged,
    verifyTime,
    verifyDuration,
    gcFreed,
    gcSwept,
    gcTime,
    gcDuration,
    fsAvail,
    fsSize,
  ];
  meter.addBatchObservableCallback(observe, observables);
  return () => meter.removeBatchObservableCallback(observe, observables);
}

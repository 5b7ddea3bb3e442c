import type { Catalog, ChunkStore, Database } from '@vmferry/store-rocksdb';
import { AlreadyExistsError, IdSource, Mutex, RwLock } from '@vmferry/core';
import { LiveDisks } from './live-state.js';
import type { NodeMetrics } from './metrics.js';

export interface EngineOptions {
  /** Most snapshots one VM may hold; default 1024. Past it, creating one fails clearly. */
  readonly maxSnapshotsPerVm: number;
  /** This node's site name, recorded as a VM's home site. */
  readonly site: string;
}

export const DEFAULT_MAX_SNAPSHOTS_PER_VM = 1024;

/** What every engine module shares: storage, catalog, locks, metrics. */
export class EngineContext {
  private readonly vmLocks = new Map<string, RwLock>();
  private readonly foldLocks = new Map<string, Mutex>();
  /** VM names claimed by a create, clone or replica commit that has not committed yet. */
  private readonly claimedNames = new Set<string>();
  /** VM and snapshot ids: one source per engine, so its ids sort in creation order. */
  readonly ids = new IdSource();
  /** The live write path's per-vDisk state (live-state.ts). */
  readonly live = new LiveDisks();

  constructor(
    readonly db: Database,
    readonly chunks: ChunkStore,
    readonly catalog: Catalog,
    readonly options: EngineOptions,
    readonly metrics: NodeMetrics,
  ) {}

  vmLock(vmId: string): RwLock {
    let l = this.vmLocks.get(vmId);
    if (!l) this.vmLocks.set(vmId, (l = new RwLock()));
    return l;
  }

  /**
   * Claims new VM names until the returned release is called (after the commit). The check
   * and the claim happen in one synchronous step, so of two concurrent creators of one name
   * exactly one proceeds; the other gets AlreadyExistsError, as if the first had committed.
   */
  claimVmNames(names: readonly string[]): () => void {
    for (const n of names) {
      if (this.catalog.vmByName(n) || this.claimedNames.has(n)) throw new AlreadyExistsError(`a VM named '${n}' already exists`);
    }
    if (new Set(names).size !== names.length) throw new AlreadyExistsError(`VM names repeat: ${names.join(', ')}`);
    for (const n of names) this.claimedNames.add(n);
    return () => names.forEach((n) => this.claimedNames.delete(n));
  }

  /** Runs `fn` with `names` claimed (see claimVmNames). */
  async withVmNames<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const release = this.claimVmNames(names);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Serialises what rewrites a VM's live entries wholesale: snapshots (freeze, fold, clean-up),
   * the background fold, and restore. Each holds it throughout, so a snapshot's clean-up sees
   * the live state its freeze saw, less only what writers changed (live-state.ts).
   */
  foldLock(vmId: string): Mutex {
    let m = this.foldLocks.get(vmId);
    if (!m) this.foldLocks.set(vmId, (m = new Mutex()));
    return m;
  }
}

import type { Catalog, ChunkStore, Database } from '@vmferry/store-rocksdb';
import { Mutex, RwLock } from './locks.js';
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
  private readonly diskEdges = new Map<string, Mutex>();

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

  /** Serialises read-modify-write of partial blocks on one vDisk. */
  diskEdgeLock(vmId: string, disk: number): Mutex {
    const key = `${vmId}/${disk}`;
    let m = this.diskEdges.get(key);
    if (!m) this.diskEdges.set(key, (m = new Mutex()));
    return m;
  }
}

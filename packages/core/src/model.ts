/** Domain records, as stored in the catalog and passed between layers (never wire types). */

export interface DiskRecord {
  readonly index: number;
  readonly size: number;
  readonly blockSize: number;
  readonly gridOffset: number;
}

/** A vDisk in a snapshot: its layout and the root of its tree (hex fingerprint). */
export interface SnapshotDisk extends DiskRecord {
  readonly root: string;
}

export interface Lineage {
  readonly vmId: string;
  readonly vmName: string;
  readonly snapshotId: string;
}

/** Who superseded a fenced copy: the owning site and its epoch. */
export interface Fence {
  readonly site: string;
  readonly epoch: number;
}

export interface VmRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAtMs: number;
  readonly homeSite: string;
  /** Opaque hypervisor configuration (VMX, libvirt XML, …), base64. */
  readonly hypervisorConfig: string;
  readonly clonedFrom?: Lineage;
  /** Live state: each vDisk's layout and the root its unsnapshotted writes overlay. */
  readonly disks: readonly SnapshotDisk[];
  /** Set on a replica VM: the site it replicates from. Replicas take no live writes. */
  readonly replicaOf?: string;
  /**
   * Ownership epoch (absent: 0). Every failover promotes a copy at epoch + 1; a copy that learns
   * of a higher epoch for its VM is fenced (ownership.ts). A replica holds its source's epoch.
   */
  readonly epoch?: number;
  /** Set on a fenced copy: the site that owns the VM now, at that epoch. Fenced copies take no writes. */
  readonly fencedBy?: Fence;
  /** Set while an import streams in; a node restarting finds such a VM half-made and removes it. */
  readonly importing?: boolean;
}

export type Consistency = 'crash' | 'vm';

export interface SnapshotRecord {
  readonly id: string;
  readonly vmId: string;
  readonly createdAtMs: number;
  readonly label?: string;
  readonly consistency: Consistency;
  /** Why a requested VM-consistent snapshot fell back to crash-consistent. */
  readonly consistencyNote?: string;
  /** manual, schedule:NAME@SLOT, clone, replica:SITE/ID. */
  readonly origin: string;
  readonly disks: readonly SnapshotDisk[];
  /** Blocks written since the previous snapshot (what this one cost). */
  readonly dirtyBlocks: number;
}

/** A peer site, as this node knows it. */
export interface SiteRecord {
  readonly name: string;
  readonly replicationAddress: string;
  readonly identity: string;
  readonly nodeAddress: string;
  readonly bindAddress: string;
  readonly rate: string;
}

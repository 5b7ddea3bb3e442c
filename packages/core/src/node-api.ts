/*
 * What a storage node offers its clients, in core types: the contract between the gRPC edge
 * (which speaks the wire) and the node (which implements it over its engine). Pure types.
 * Every method may throw a coded VmferryError; the edge maps it to a status.
 */
import type { SiteRecord, SnapshotRecord, VmRecord } from './model.js';
import type { ChunkToStore, PutResult } from './replication-types.js';

export interface DiskSpec {
  readonly size: number;
  /** 0 or absent: the default, 64 KiB. */
  readonly blockSize?: number;
}

export interface CreateVmInput {
  readonly name: string;
  readonly disks: readonly DiskSpec[];
  readonly hypervisorConfig?: Uint8Array;
}

/** A VM being imported: hidden until `finish`; `abort` removes it. */
export interface ImportSession {
  readonly vm: VmRecord;
  /** Data in disk order and, within a disk, in increasing offsets (gaps are holes). */
  write(diskIndex: number, offset: number, data: Buffer): Promise<void>;
  finish(): Promise<VmRecord>;
  abort(): Promise<void>;
}

export interface WriteResult {
  readonly bytesWritten: number;
  /** The vDisk's grid offset after the write (auto-alignment may set it on a write of sector 0). */
  readonly gridOffset: number;
}

/** Appends to a live vDisk; `end` commits the tail, `abandon` drops what was not dispatched. */
export interface DiskWriter {
  write(data: Buffer): Promise<void>;
  end(): Promise<WriteResult>;
  abandon(): Promise<void>;
}

/** A run of a vDisk: data (its parts, in order, `length` bytes in all) or, without parts, a hole. */
export interface DiskExtent {
  readonly offset: number;
  readonly parts?: readonly Buffer[];
  readonly length: number;
}

export interface DiskRead {
  /** The vDisk's size. */
  readonly size: number;
  readonly extents: AsyncIterable<DiskExtent>;
}

/** A chunk in its stored form, as replication moves it, its kind always said. */
export interface IncomingChunk extends ChunkToStore {
  readonly node: boolean;
}

/** A chunk's id and bytes (raw or stored form, as the call says). */
export interface ChunkBytes {
  readonly id: Buffer;
  readonly bytes: Buffer;
}

export interface VmSpace {
  readonly vmId: string;
  readonly vmName: string;
  readonly logicalBytes: number;
  readonly referencedStoredBytes: number;
  readonly uniqueStoredBytes: number;
  readonly sharedStoredBytes: number;
}

export interface NodeStats {
  readonly logicalBytes: number;
  readonly storedBytes: number;
  readonly uncompressedBytes: number;
  readonly chunkCount: number;
  readonly dedupRatio: number;
  readonly compressionRatio: number;
  readonly totalRatio: number;
  readonly vmCount: number;
  readonly snapshotCount: number;
  readonly vms: readonly VmSpace[];
}

export interface GcReport {
  readonly chunksMarked: number;
  readonly chunksSwept: number;
  readonly bytesFreed: number;
  readonly durationMs: number;
}

export interface CorruptChunk {
  readonly chunkId: string;
  readonly reason: string;
  readonly referencedBy: readonly string[];
}

export interface VerifyReport {
  readonly chunksChecked: number;
  readonly corrupt: readonly CorruptChunk[];
  /** Referenced by a root but absent from the store, with who references them. */
  readonly missing: readonly { readonly chunkId: string; readonly referencedBy: readonly string[] }[];
}

/** The storage node API (its clients: the CLI, the scheduler, this site's replicator). */
export interface StorageNodeApi {
  /** The node's site name. */
  readonly site: string;
  /** Snapshots the VM holds (shown with the VM). */
  snapshotCount(vmId: string): number;

  createVm(input: CreateVmInput): Promise<VmRecord>;
  beginImport(input: CreateVmInput): Promise<ImportSession>;
  listVms(): VmRecord[];
  getVm(nameOrId: string): VmRecord;
  deleteVm(nameOrId: string): Promise<void>;
  /** Replaces the VM's hypervisor config (checked as a template when it holds `{{`); not on a replica. */
  setVmConfig(nameOrId: string, hypervisorConfig: Uint8Array): Promise<VmRecord>;

  /** A writer at `offset` of the live vDisk; `length` (0: unknown) is checked before anything is written. */
  openWriter(vm: string, diskIndex: number, offset: number, length: number): DiskWriter;
  /** `VM` (live) or `VM@SNAPSHOT`, [offset, offset+length) (0: to the end). */
  read(ref: string, diskIndex: number, offset: number, length: number): DiskRead;

  createSnapshot(vm: string, options: { readonly label?: string }): Promise<SnapshotRecord>;
  listSnapshots(vm: string): SnapshotRecord[];
  getSnapshot(ref: string): { readonly vm: VmRecord; readonly snapshot: SnapshotRecord };
  deleteSnapshot(ref: string): Promise<void>;
  labelSnapshot(ref: string, label: string): Promise<SnapshotRecord>;
  clone(ref: string, name: string, count: number): Promise<{ readonly source: SnapshotRecord; readonly vms: readonly VmRecord[] }>;
  restore(ref: string, diskIndex?: number): Promise<VmRecord>;
  /** Fences this site's copy of `vm`: `ownerSite` owns it at `ownerEpoch` (core/ownership.ts). */
  fenceVm(vm: string, ownerSite: string, ownerEpoch: number): Promise<{ vm: VmRecord; snapshot: SnapshotRecord }>;
  /** Promotes a replica or fenced copy to the writable VM here; `epoch` 0: the known one + 1. */
  promoteVm(vm: string, snapshot: string | undefined, epoch: number): Promise<VmRecord>;

  stats(vm?: string): Promise<NodeStats>;
  gc(): Promise<GcReport>;
  verify(onProgress: (checked: number) => void): Promise<VerifyReport>;

  /** Which of `ids` the node lacks, in input order. */
  missingChunks(ids: readonly Buffer[]): Promise<Buffer[]>;
  /** Verifies and stores one batch atomically. */
  putChunks(chunks: readonly IncomingChunk[]): Promise<PutResult>;
  /** Raw, verified bytes of `ids`, in groups, in input order; NOT_FOUND for an absent one. */
  readChunks(ids: readonly Buffer[]): AsyncIterable<readonly ChunkBytes[]>;
  commitReplica(sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): Promise<SnapshotRecord>;

  putSite(site: SiteRecord): Promise<SiteRecord>;
  listSites(): Promise<SiteRecord[]>;
  deleteSite(name: string): Promise<void>;
}

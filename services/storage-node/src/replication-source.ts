/*
 * What the site's read-only replication endpoint serves (ReplicationSourceApi): snapshot
 * metadata and stored chunk records, to the peer sites the node knows (a site record whose
 * identity equals the client certificate's subject CN); anyone else is refused before
 * learning anything. Nothing here writes chunks or records, except a peer's acknowledged base.
 */
import {
  FINGERPRINT_BYTES,
  InvalidArgumentError,
  NotFoundError,
  packChunks,
  parseRef,
  PermissionDeniedError,
  SYSTEM_CLOCK,
  type ChunkBytes,
  type Clock,
  type PackedBatchData,
  type ReplicationSourceApi,
  type VmRecord,
} from '@vmferry/core';
import type { StorageEngine } from './engine.js';
import { collectPageSet, PageSets } from './page-sets.js';

const MAX_IDS = 65536;
export const SITE_CACHE_MS = 1000;
/** Stored records read at a time for FetchChunks (the edge cuts them into messages). */
const RECORDS_GROUP = 64;
/** Chunks packed per message (64 × 64 KiB = 4 MiB raw before compression). */
const PACKED_BATCH_CHUNKS = 64;

function checkIds(ids: readonly Buffer[]): readonly Buffer[] {
  if (ids.length > MAX_IDS) throw new InvalidArgumentError(`at most ${MAX_IDS} ids per call`);
  for (const id of ids) if (id.length !== FINGERPRINT_BYTES) throw new InvalidArgumentError('chunk ids are 32 bytes');
  return ids;
}

export class ReplicationSource implements ReplicationSourceApi {
  private sitesByIdentity: { at: number; byIdentity: Map<string, string> } | undefined;
  private readonly pageSets = new PageSets();

  /** `clock` times the site cache: a site record changed here is honoured within SITE_CACHE_MS. */
  constructor(
    private readonly engine: StorageEngine,
    private readonly clock: Pick<Clock, 'nowMs'> = SYSTEM_CLOCK,
  ) {}

  async authorize(identity: string | undefined): Promise<string> {
    if (!identity) throw new PermissionDeniedError('no verified client certificate: replication needs mTLS');
    if (!this.sitesByIdentity || this.clock.nowMs() - this.sitesByIdentity.at > SITE_CACHE_MS) {
      const sites = await this.engine.listSites();
      this.sitesByIdentity = { at: this.clock.nowMs(), byIdentity: new Map(sites.filter((s) => s.identity).map((s) => [s.identity, s.name])) };
    }
    const site = this.sitesByIdentity.byIdentity.get(identity);
    if (!site) throw new PermissionDeniedError(`certificate identity '${identity}' is not an allowed peer of site ${this.engine.site}`);
    return site;
  }

  /** A VM a peer may see: one whose import has finished. */
  private visibleVm(name: string): VmRecord {
    const vm = this.engine.getVm(name);
    if (vm.importing) throw new NotFoundError('vm', name);
    return vm;
  }

  getSnapshot(_site: string, ref: string): ReturnType<ReplicationSourceApi['getSnapshot']> {
    const parsed = parseRef(ref);
    const vm = this.visibleVm(parsed.vm);
    const snaps = this.engine.listSnapshots(vm.id);
    const snapshot = parsed.snapshot === undefined || parsed.snapshot === 'latest' ? snaps[snaps.length - 1] : this.engine.getSnapshot(ref).snapshot;
    if (!snapshot) throw new NotFoundError('snapshot', `${vm.name}@latest`, `VM '${vm.name}' has no snapshots at site ${this.engine.site}`);
    return { site: this.engine.site, vm, snapshotCount: snaps.length, snapshot };
  }

  listSnapshots(_site: string, vmName: string): ReturnType<ReplicationSourceApi['listSnapshots']> {
    const vm = this.visibleVm(vmName);
    return { vm, snapshots: this.engine.listSnapshots(vm.id) };
  }

  chunkSizes(_site: string, ids: readonly Buffer[]): Promise<number[]> {
    return this.engine.chunkSizes(checkIds(ids));
  }

  ackReplica(site: string, vmId: string, snapshotId: string): Promise<void> {
    return this.engine.recordReplicationBase(site, vmId, snapshotId);
  }

  async openPageSet(site: string, parts: AsyncIterable<Buffer>): Promise<{ token: string; pages: number }> {
    const set = await collectPageSet(parts);
    return { token: this.pageSets.add(site, set), pages: set.size };
  }

  async *fetchPacked(site: string, ids: readonly Buffer[], pageSet: string): AsyncGenerator<PackedBatchData> {
    checkIds(ids);
    const set = pageSet ? this.pageSets.get(pageSet, site) : new Set<string>();
    for (let i = 0; i < ids.length; i += PACKED_BATCH_CHUNKS) {
      const slice = ids.slice(i, i + PACKED_BATCH_CHUNKS);
      const raws = await this.engine.rawChunks(slice);
      const packed = packChunks(
        slice.map((id, k) => ({ id, raw: raws[k] as Buffer })),
        (h) => set.has(h),
      );
      const [literals] = await this.engine.encodeRecords([packed.literals]);
      yield { chunks: packed.chunks, literals: literals ?? Buffer.alloc(0) };
    }
  }

  async *fetchChunks(_site: string, ids: readonly Buffer[]): AsyncGenerator<ChunkBytes[]> {
    checkIds(ids);
    for (let i = 0; i < ids.length; i += RECORDS_GROUP) {
      const slice = ids.slice(i, i + RECORDS_GROUP);
      const records = await this.engine.chunkRecords(slice);
      yield records.map((bytes, k) => ({ id: slice[k] as Buffer, bytes }));
    }
  }
}

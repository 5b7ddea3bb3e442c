/*
 * The storage node API (what its gRPC server serves) over the engine: delegation, plus the
 * grouping of chunk reads into messages. The engine keeps every decision.
 */
import type { ChunkBytes, StorageNodeApi } from '@vmferry/core';
import type { StorageEngine } from './engine.js';

/** Raw chunks read (and sent as one message) at a time: 32 × 64 KiB blocks = 2 MiB. */
const READ_CHUNKS_GROUP = 32;

async function* rawChunkGroups(engine: StorageEngine, ids: readonly Buffer[]): AsyncGenerator<ChunkBytes[]> {
  for (let i = 0; i < ids.length; i += READ_CHUNKS_GROUP) {
    const slice = ids.slice(i, i + READ_CHUNKS_GROUP);
    const raws = await engine.rawChunks(slice);
    yield raws.map((bytes, k) => ({ id: slice[k] as Buffer, bytes }));
  }
}

export function storageNodeApi(engine: StorageEngine): StorageNodeApi {
  return {
    get site() {
      return engine.site;
    },
    snapshotCount: (vmId) => engine.snapshotCount(vmId),
    createVm: (input) => engine.createVm(input),
    beginImport: (input) => engine.beginImport(input),
    listVms: () => engine.listVms(),
    getVm: (vm) => engine.getVm(vm),
    deleteVm: async (vm) => {
      await engine.deleteVm(vm);
    },
    setVmConfig: (vm, config) => engine.setVmConfig(vm, config),
    openWriter: (vm, diskIndex, offset, length) => engine.openWriter(vm, diskIndex, offset, length),
    read: (ref, diskIndex, offset, length) => engine.read(ref, diskIndex, offset, length),
    createSnapshot: (vm, options) => engine.createSnapshot(vm, options),
    listSnapshots: (vm) => engine.listSnapshots(vm),
    getSnapshot: (ref) => engine.getSnapshot(ref),
    deleteSnapshot: async (ref) => {
      await engine.deleteSnapshot(ref);
    },
    labelSnapshot: (ref, label) => engine.labelSnapshot(ref, label),
    clone: (ref, name, count) => engine.clone(ref, name, count),
    restore: (ref, diskIndex) => engine.restore(ref, diskIndex),
    fenceVm: (vm, ownerSite, ownerEpoch) => engine.fenceVm(vm, ownerSite, ownerEpoch),
    promoteVm: (vm, snapshot, epoch) => engine.promoteVm(vm, snapshot, epoch),
    stats: (vm) => engine.stats(vm),
    gc: () => engine.gc(),
    verify: (onProgress) => engine.verify(onProgress),
    missingChunks: (ids) => engine.missingChunks(ids),
    putChunks: (chunks) => engine.putChunks(chunks),
    readChunks: (ids) => rawChunkGroups(engine, ids),
    commitReplica: (sourceSite, vm, snapshot) => engine.commitReplica(sourceSite, vm, snapshot),
    putSite: (site) => engine.putSite(site),
    listSites: () => engine.listSites(),
    deleteSite: async (name) => {
      await engine.deleteSite(name);
    },
  };
}

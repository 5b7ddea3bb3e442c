/** The chunk store conformance suite against the in-memory store. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailedPreconditionError, fingerprint } from '@vmferry/core';
import { MemoryChunkStore } from '../src/index.js';
import { chunkStoreConformance } from './chunk-store-conformance.js';

chunkStoreConformance('in memory', () => {
  const store = new MemoryChunkStore();
  return Promise.resolve({
    store,
    commit: (fill) => store.commit(fill),
    damage: async (id, record) => {
      store.overwriteRecord(id, record);
    },
    close: () => store.close(),
  });
});

test('the in-memory store refuses to stage into a batch that is not its own', async () => {
  const store = new MemoryChunkStore();
  const block = Buffer.alloc(4096, 1);
  const foreign = { tryPut: () => undefined, tryDelete: () => undefined, tryDeleteRange: () => undefined };
  await assert.rejects(
    store.ingest([block], async (_ids, stage) => {
      stage(foreign);
    }),
    FailedPreconditionError,
  );
  assert.deepEqual(await store.has([fingerprint(block)]), [false]);
});

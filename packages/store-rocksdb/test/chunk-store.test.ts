/** The chunk store conformance suite against the RocksDB store. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkStore, Database, keys } from '../src/index.js';
import { chunkStoreConformance } from './chunk-store-conformance.js';

chunkStoreConformance('RocksDB', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmferry-chunks-'));
  const db = await Database.open(dir);
  const store = new ChunkStore(db, { threads: 1 });
  return {
    store,
    commit: (fill) => db.commit(fill),
    damage: (id, record) => db.commit((b) => b.tryPut(keys.chunkKey(id), record)),
    close: async () => {
      await store.close();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

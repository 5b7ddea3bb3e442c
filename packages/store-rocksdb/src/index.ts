export { Database, WalRecovery, type OpenMode, type WriteBatch } from './database.js';
export { recoverWal, type WalRecoveryReport } from './wal-recovery.js';
export { ChunkStore, type StoredChunk, type ChunkIndexEntry } from './chunk-store.js';
export { CodecPool, type CodecPoolOptions, type Decoded } from './codec-pool.js';
export { Catalog, type CatalogTx } from './catalog.js';
export * as keys from './keys.js';
export { LruCache } from './lru.js';
export { GcBarrier } from './gc-barrier.js';

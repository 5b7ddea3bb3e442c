export { runStorageNode, type RunningNode } from './main.js';
export { loadConfig, configFromEnv, DEFAULT_LISTEN, type NodeConfig } from './config.js';
export { StorageEngine, type OpenOptions } from './engine.js';
export { recoverWal, type WalRecoveryReport } from '@vmferry/store-rocksdb';

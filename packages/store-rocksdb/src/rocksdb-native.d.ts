// Minimal types for rocksdb-native 3.x (the package ships none): only what this package uses.
declare module 'rocksdb-native' {
  namespace RocksDB {
    interface Range {
      gt?: Buffer;
      gte?: Buffer;
      lt?: Buffer;
      lte?: Buffer;
      reverse?: boolean;
      limit?: number;
    }
    interface Entry {
      key: Buffer;
      value: Buffer;
    }
    interface WriteBatch {
      tryPut(key: Buffer, value: Buffer): void;
      tryDelete(key: Buffer): void;
      tryDeleteRange(start: Buffer, end: Buffer): void;
      flush(): Promise<void>;
      destroy(): void;
    }
    interface ReadBatch {
      get(key: Buffer): Promise<Buffer | null>;
      tryFlush(): void;
      flush(): Promise<void>;
      destroy(): void;
    }
    interface Iterator extends AsyncIterable<Entry> {
      destroy(): void;
    }
    interface Options extends ColumnFamilyOptions {
      columnFamily?: unknown;
      maxBackgroundJobs?: number;
      bytesPerSync?: number;
      /** Open without writing anything (no WAL replay into new files, no compaction). */
      readOnly?: boolean;
      /** RocksDB's WALRecoveryMode: 0 tolerate a torn tail, 1 absolute, 2 point in time, 3 skip any. */
      walRecoveryMode?: number;
    }
    interface ColumnFamilyOptions {
      enableBlobFiles?: boolean;
      minBlobSize?: number;
      blobFileSize?: number;
      writeBufferSize?: number;
      tableBlockSize?: number;
    }
  }
  class RocksDB {
    constructor(path: string, opts?: RocksDB.Options);
    static ColumnFamily: new (name: string, opts?: RocksDB.ColumnFamilyOptions) => unknown;
    ready(): Promise<void>;
    /** A session reading from a snapshot taken now; close() releases it. */
    snapshot(): RocksDB;
    close(): Promise<void>;
    get(key: Buffer): Promise<Buffer | null>;
    read(opts?: { capacity?: number }): RocksDB.ReadBatch;
    write(opts?: { capacity?: number }): RocksDB.WriteBatch;
    iterator(range: RocksDB.Range, opts?: { values?: boolean; capacity?: number }): RocksDB.Iterator;
    keys(range: RocksDB.Range): AsyncIterable<Buffer>;
    flush(): Promise<void>;
    compactRange(start?: Buffer | null, end?: Buffer | null): Promise<void>;
    currentWalFile(): Promise<{ path: string; number: number; size: number }>;
  }
  export = RocksDB;
}

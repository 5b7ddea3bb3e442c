import { open } from 'node:fs/promises';
import { join } from 'node:path';
import RocksDB from 'rocksdb-native';
import { FailedPreconditionError, StoreDamagedError } from '@vmferry/core';
import { upgradeV1ToV2 } from './format-upgrade.js';
import { FORMAT_VERSION, metaKey } from './keys.js';
import { explainOpenFailure } from './open-failure.js';
import { asStorageFull, freeBytes, FULL_BELOW_BYTES, storageFull } from './storage-full.js';

/** RocksDB's WALRecoveryMode values (rocksdb-native's constants.walRecoveryMode). */
export const WalRecovery = { TOLERATE_TORN_TAIL: 0, POINT_IN_TIME: 2, SKIP_ANY: 3 } as const;

/** How to open: only `--recover-wal` uses anything but the defaults. */
export interface OpenMode {
  /** Default TOLERATE_TORN_TAIL: refuse on a damaged record, accept a truncated un-synced tail. */
  readonly walRecovery?: (typeof WalRecovery)[keyof typeof WalRecovery];
  readonly readOnly?: boolean;
}

/** [gte, lt) of keys. */
export interface KeyRange {
  readonly gte: Buffer;
  readonly lt: Buffer;
}

/** What reads key ranges: the database itself, or a snapshot of it (Database.snapshot). */
export interface RangeReader {
  entries(range: KeyRange, values?: boolean, capacity?: number): AsyncGenerator<{ key: Buffer; value: Buffer }>;
}

/** A snapshot of the database: reads see it as it was when taken. */
export interface ReadView extends RangeReader {
  release(): Promise<void>;
}

async function* iterate(
  db: RocksDB,
  range: KeyRange,
  values: boolean,
  capacity: number,
  damaged: (e: unknown) => unknown,
): AsyncGenerator<{ key: Buffer; value: Buffer }> {
  try {
    for await (const e of db.iterator(range, { values, capacity })) yield e;
  } catch (e) {
    throw damaged(e);
  }
}

/** One getMany call waiting for its turn's merged batch. */
interface QueuedRead {
  readonly keys: readonly Buffer[];
  readonly resolve: (values: (Buffer | null)[]) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Keys past which a turn's queued point reads are issued at once: bounds the batch (and the
 * time its native call holds the JS thread) when many 64 KiB chunk reads are queued together.
 */
const MAX_MERGED_KEYS = 128;

/** The writes a commit may stage (a subset of rocksdb-native's batch, typed here for callers). */
export interface WriteBatch {
  tryPut(key: Buffer, value: Buffer): void;
  tryDelete(key: Buffer): void;
  tryDeleteRange(start: Buffer, end: Buffer): void;
}

/**
 * The node's RocksDB instance: one column family, keys laid out in keys.ts.
 *
 * Durability: rocksdb-native has no per-write sync option, so RocksDB appends to its WAL
 * without fsync. A commit that must survive power loss (a snapshot, a VM record) calls
 * `commit(batch, { durable: true })`, which writes the batch and then fdatasyncs the current
 * WAL file. WAL writes are sequential, so every earlier write (the chunks the snapshot
 * references) is on disk once that returns. A plain process kill loses nothing either way:
 * the WAL is in the OS page cache.
 *
 * Damage: RocksDB's default WAL recovery (point in time) stops at a damaged record and
 * silently drops it and every later commit, durable or not. We open with
 * kTolerateCorruptedTailRecords instead: a record cut short at the end of the log (an
 * un-synced tail lost in a power cut, never reported durable) is dropped, but a record that
 * fails its checksum anywhere refuses the open with a StoreDamagedError naming the file.
 *
 * Full disk: a write that fails on a full filesystem throws StorageFullError (naming the
 * directory and free bytes). RocksDB then refuses all writes until Resume(), which
 * rocksdb-native does not expose, so the next write after space is back closes and reopens
 * the instance (the WAL replays every committed write) before it goes ahead.
 */
export class Database {
  /** A write failed on a full disk: reopen before the next one. */
  private full = false;
  private reopening: Promise<void> | undefined;

  /** Point reads waiting for this turn's batch (getMany). */
  private queuedReads: QueuedRead[] = [];
  private queuedKeys = 0;
  private readFlushScheduled = false;

  private constructor(
    readonly path: string,
    private db: RocksDB,
    private readonly mode: OpenMode,
  ) {}

  private get readOnly(): boolean {
    return this.mode.readOnly === true;
  }

  /** A read RocksDB refused for damage (a block or blob checksum) becomes DATA_LOSS naming the file. */
  private damaged(e: unknown): unknown {
    if (!(e instanceof Error) || !/checksum|corrupt/i.test(e.message)) return e;
    return new StoreDamagedError(`data directory ${this.path}: a database file is damaged: ${e.message}`, { cause: e });
  }

  static async open(path: string, mode: OpenMode = {}): Promise<Database> {
    const db = await openRocks(path, mode);
    const d = new Database(path, db, mode);
    const stored = await db.get(metaKey('format'));
    const version = stored === null ? undefined : Number(stored.toString());
    const writable = mode.readOnly !== true;
    if (version === undefined && writable) {
      await d.markFormat();
    } else if (version === 1 && writable) {
      await upgradeV1ToV2(d);
      await d.markFormat();
    } else if (version === 2 && writable) {
      // Version 3 only adds the page overlay, which a version-2 folder does not have.
      await d.markFormat();
    } else if ((version === 1 || version === 2) && !writable) {
      // A read-only open (WAL recovery's first look) reads only records, the same in every version.
    } else if (version !== undefined && version !== FORMAT_VERSION) {
      await db.close();
      throw new FailedPreconditionError(`data folder ${path} has format version ${String(stored)}; this build reads version ${FORMAT_VERSION}`);
    }
    return d;
  }

  private markFormat(): Promise<void> {
    return this.commit((b) => b.tryPut(metaKey('format'), Buffer.from(String(FORMAT_VERSION))), { durable: true });
  }

  /**
   * A read view of the database at this instant (a RocksDB snapshot): reads through it see
   * every commit that returned before and none that starts after. Release it when done.
   */
  snapshot(): ReadView {
    const session = this.db.snapshot();
    return {
      entries: (range, values = true, capacity = 256) => iterate(session, range, values, capacity, (e) => this.damaged(e)),
      release: () => session.close(),
    };
  }

  /** Builds a batch with `fill` and writes it atomically; `durable` also syncs the WAL. */
  async commit(fill: (batch: WriteBatch) => void, options: { durable?: boolean } = {}): Promise<void> {
    if (this.full) await this.resumeAfterFull();
    const batch = this.db.write({ capacity: 64 });
    try {
      fill(batch);
      await batch.flush();
      if (options.durable) await this.syncWal();
    } catch (e) {
      throw await this.writeFailed(e);
    } finally {
      // An undestroyed batch keeps close() from resolving (docs/design.md, library facts).
      batch.destroy();
    }
  }

  private async writeFailed(e: unknown): Promise<unknown> {
    const mapped = await asStorageFull(this.path, e);
    if (mapped !== e) this.full = true;
    return mapped;
  }

  /** Reopens RocksDB once space is back (one reopen for all callers waiting on it). */
  private async resumeAfterFull(): Promise<void> {
    this.reopening ??= (async () => {
      const free = await freeBytes(this.path);
      if (free !== undefined && free < FULL_BELOW_BYTES) throw storageFull(this.path, free);
      await this.db.close();
      this.db = await openRocks(this.path, this.mode);
      this.full = false;
    })().finally(() => {
      this.reopening = undefined;
    });
    await this.reopening;
  }

  private async syncWal(): Promise<void> {
    const wal = await this.db.currentWalFile();
    const fh = await open(join(this.path, wal.path), 'r');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Values for `keys` (small records: index entries, live writes, pins; chunks: getLarge),
   * null where absent, in input order.
   *
   * Calls made in the same turn of the event loop are read in one native batch (one MultiGet),
   * issued from setImmediate once the turn's microtasks have run: rocksdb-native does part of
   * each batch's work on the JS thread, and under 16 concurrent guest reads the per-batch cost
   * (about 10 µs for a one-key miss, 1 µs a key in a batch of 16) was a large share of the
   * event loop. A caller waits no longer than the rest of the current turn. When the merged
   * batch fails (a damaged record) every caller's keys are read again alone, so only the
   * caller that asked for the damaged key sees the error.
   */
  getMany(keys: readonly Buffer[]): Promise<(Buffer | null)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queuedReads.push({ keys, resolve, reject });
      this.queuedKeys += keys.length;
      if (this.queuedKeys >= MAX_MERGED_KEYS) this.flushReads();
      else if (!this.readFlushScheduled) {
        this.readFlushScheduled = true;
        setImmediate(() => {
          this.readFlushScheduled = false;
          this.flushReads();
        });
      }
    });
  }

  /**
   * Values of large records (chunks: tens of KiB each), null where absent, in input order. Each
   * key is its own native batch, all issued at once: the thread pool then reads them in
   * parallel, and no call holds the JS thread for a whole batch (measured: 16 one-key batches
   * of 64 KiB chunks ~6,300–7,100 reads/s, one batch of 16 ~4,800–6,100, holding the JS thread
   * ~200–370 µs). Rejects if any read fails.
   */
  getLarge(keys: readonly Buffer[]): Promise<(Buffer | null)[]> {
    return Promise.all(keys.map(async (k) => (await this.readBatch([k]))[0] ?? null));
  }

  /** Issues the queued point reads as one batch (getMany). */
  private flushReads(): void {
    const group = this.queuedReads;
    this.queuedReads = [];
    this.queuedKeys = 0;
    const [only] = group;
    if (only === undefined) return;
    if (group.length === 1) {
      this.readBatch(only.keys).then(only.resolve, only.reject);
      return;
    }
    this.readBatch(group.flatMap((g) => g.keys)).then(
      (values) => {
        let at = 0;
        for (const g of group) {
          g.resolve(values.slice(at, at + g.keys.length));
          at += g.keys.length;
        }
      },
      () => {
        for (const g of group) this.readBatch(g.keys).then(g.resolve, g.reject);
      },
    );
  }

  private async readBatch(keys: readonly Buffer[]): Promise<(Buffer | null)[]> {
    const batch = this.db.read({ capacity: keys.length });
    try {
      const promises = keys.map((k) => batch.get(k));
      batch.tryFlush();
      return await Promise.all(promises);
    } catch (e) {
      throw this.damaged(e);
    } finally {
      batch.destroy();
    }
  }

  get(key: Buffer): Promise<Buffer | null> {
    return this.db.get(key).catch((e: unknown) => {
      throw this.damaged(e);
    });
  }

  /** Entries of `range` in key order; `capacity` entries are read per native call. */
  entries(range: KeyRange, values = true, capacity = 256): AsyncGenerator<{ key: Buffer; value: Buffer }> {
    return iterate(this.db, range, values, capacity, (e) => this.damaged(e));
  }

  /**
   * Flushes the memtable first: a clean stop then leaves every commit in table and blob
   * files (checksummed per block, verified on read) rather than only in the WAL.
   */
  async close(): Promise<void> {
    // Reads queued this turn are issued before the close, as they were before merging.
    this.flushReads();
    // A flush that fails (a full disk) loses nothing: the WAL still holds every write.
    if (!this.readOnly) await this.db.flush().catch(() => undefined);
    await this.db.close();
  }
}

async function openRocks(path: string, mode: OpenMode): Promise<RocksDB> {
  // Chunks (KiB-sized values) go to blob files: compaction then moves small keys, not
  // chunk bytes, which keeps ingest near disk speed (values are already compressed).
  const db = new RocksDB(path, {
    maxBackgroundJobs: 4,
    enableBlobFiles: true,
    minBlobSize: 2048,
    blobFileSize: 256 * 1024 * 1024,
    writeBufferSize: 128 * 1024 * 1024,
    walRecoveryMode: mode.walRecovery ?? WalRecovery.TOLERATE_TORN_TAIL,
    readOnly: mode.readOnly ?? false,
  });
  try {
    await db.ready();
  } catch (e) {
    throw await explainOpenFailure(path, e);
  }
  return db;
}

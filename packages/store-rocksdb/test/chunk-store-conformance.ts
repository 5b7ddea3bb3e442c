/*
 * What every chunk store must do, as a suite run against a store implementation: the
 * pipeline's entries (ingest, receive, lacking), verified reads, dedup, pins, and the GC write
 * barrier's basics. `open` gives a fresh, empty store and a way to damage a stored record.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChunkCorruptError,
  ChunkMissingError,
  FailedPreconditionError,
  fingerprint,
  HOLE,
  isHole,
  rawRecord,
  sealNode,
  setChild,
  emptyNode,
  toHex,
  zstdRecord,
  type Fingerprint,
} from '@vmferry/core';
import { Compressor } from 'zstd-napi';
import type { ChunkStorePort, WriteBatch } from '../src/index.js';

export interface StoreUnderTest {
  readonly store: ChunkStorePort;
  /** Writes one batch straight to the store's database. */
  commit(fill: (batch: WriteBatch) => void): Promise<void>;
  /** Overwrites the stored record of `id` with `record` (simulated damage). */
  damage(id: Fingerprint, record: Buffer): Promise<void>;
  close(): Promise<void>;
}

const block = (seed: number, size = 65536): Buffer => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((seed * 2654435761 + i * 40503) >>> 0, i);
  return b;
};
const text = (s: string, size = 65536): Buffer => Buffer.alloc(size, s);

export function chunkStoreConformance(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`chunk store conformance: ${name}`, () => {
    const opened: StoreUnderTest[] = [];
    const fresh = async (): Promise<StoreUnderTest> => {
      const s = await open();
      opened.push(s);
      return s;
    };
    after(async () => {
      for (const s of opened) await s.close();
    });

    /** Ingests `blocks`, committing nothing but the new chunks. */
    const ingest = (s: StoreUnderTest, blocks: Buffer[]): ReturnType<ChunkStorePort['ingest']> => s.store.ingest(blocks, (_ids, stage) => s.commit(stage));

    test('ingest names blocks by their hash, zero blocks are holes, get returns the bytes', async () => {
      const s = await fresh();
      const blocks = [block(1), Buffer.alloc(65536), text('a')];
      const r = await ingest(s, blocks);
      assert.ok((r.ids[0] as Buffer).equals(fingerprint(blocks[0] as Buffer)));
      assert.ok(isHole(r.ids[1] as Buffer), 'an all-zero block is a hole');
      assert.equal(r.newChunks, 2);
      assert.ok(r.newStoredBytes < r.newRawBytes, 'compressible data is stored compressed');
      const back = await s.store.get([r.ids[0] as Buffer, r.ids[2] as Buffer]);
      assert.ok((back[0] as Buffer).equals(blocks[0] as Buffer));
      assert.ok((back[1] as Buffer).equals(blocks[2] as Buffer));
      assert.deepEqual(await s.store.sizes([r.ids[2] as Buffer, fingerprint(text('absent'))]), [
        (await s.store.entries([r.ids[2] as Buffer]))[0]?.storedBytes,
        0,
      ]);
    });

    test('dedup: a block the store holds, or one repeated in a batch, is stored once', async () => {
      const s = await fresh();
      const first = await ingest(s, [block(2), block(2), text('b')]);
      assert.equal(first.newChunks, 2);
      const second = await ingest(s, [text('b'), block(2)]);
      assert.equal(second.newChunks, 0);
      assert.equal(second.newStoredBytes, 0);
    });

    test('a failed commit stores nothing', async () => {
      const s = await fresh();
      const failing = new FailedPreconditionError('the VM went away');
      await assert.rejects(
        s.store.ingest([block(3)], () => Promise.reject(failing)),
        (e) => e === failing,
      );
      assert.deepEqual(await s.store.has([fingerprint(block(3))]), [false]);
    });

    test('lacking lists the absent ids (never holes) and pins the present ones', async () => {
      const s = await fresh();
      const [held] = (await ingest(s, [block(4)])).ids as Buffer[];
      const absent = fingerprint(text('nowhere'));
      const until = Date.now() + 60_000;
      const lacking = await s.store.lacking([held as Buffer, absent, HOLE], until);
      assert.deepEqual(lacking.map(toHex), [toHex(absent)]);
      assert.deepEqual(await s.store.pinned([held as Buffer, absent], Date.now()), [true, false]);
      assert.deepEqual(await s.store.pinned([held as Buffer], until + 1), [false], 'an expired pin protects nothing');
      const pins: string[] = [];
      for await (const id of s.store.pins(Date.now())) pins.push(toHex(id));
      assert.deepEqual(pins, [toHex(held as Buffer)]);
    });

    test('reads verify: a damaged record is ChunkCorruptError, an absent one ChunkMissingError', async () => {
      const s = await fresh();
      const [id] = (await ingest(s, [block(5)])).ids as Buffer[];
      await s.damage(id as Buffer, rawRecord(block(6)));
      await assert.rejects(s.store.get([id as Buffer]), ChunkCorruptError);
      assert.equal((await s.store.check([id as Buffer]))[0], 'content does not match its fingerprint');
      await assert.rejects(s.store.get([fingerprint(text('gone'))]), ChunkMissingError);
    });

    test('receive stores verified peer records and pins them; a lying record stores nothing', async () => {
      const s = await fresh();
      const data = text('peer');
      const id = fingerprint(data);
      const until = Date.now() + 60_000;
      const liar = { id: fingerprint(text('other')), record: rawRecord(text('not it')), node: false };
      await assert.rejects(s.store.receive([{ id, record: rawRecord(data), node: false, compress: true }, liar], until), ChunkCorruptError);
      assert.deepEqual(await s.store.has([id]), [false], 'all or nothing');
      const r = await s.store.receive([{ id, record: rawRecord(data), node: false, compress: true }], until);
      assert.equal(r.chunksStored, 1);
      assert.ok(r.bytesStored < data.length, 'a raw rebuilt chunk is compressed before storing');
      assert.ok(((await s.store.get([id]))[0] as Buffer).equals(data));
      assert.deepEqual(await s.store.pinned([id], Date.now()), [true]);
    });

    test('receive refuses a tree node before its children, and one not stored raw', async () => {
      const s = await fresh();
      const child = text('leaf');
      const node = emptyNode(0, 4);
      setChild(node, 1, fingerprint(child));
      const sealed = sealNode(node);
      const until = Date.now() + 60_000;
      await assert.rejects(s.store.receive([{ id: sealed.id, record: rawRecord(sealed.bytes), node: true }], until), FailedPreconditionError);
      await s.store.receive([{ id: fingerprint(child), record: rawRecord(child), node: false }], until);
      // The right bytes, decodable and hashing to the id, but compressed: nodes are stored raw.
      const compressed = zstdRecord(new Compressor().compress(sealed.bytes));
      await assert.rejects(
        s.store.receive([{ id: sealed.id, record: compressed, node: true }], until),
        (e: unknown) => e instanceof ChunkCorruptError && /must be stored raw/.test(e.message),
      );
      await s.store.receive([{ id: sealed.id, record: rawRecord(sealed.bytes), node: true }], until);
      assert.equal((await s.store.getNode(sealed.id)).slots, 4);
    });

    test('GC barrier: a running collection records what ingest checks and writes; a sweep excludes sections', async () => {
      const s = await fresh();
      const [old] = (await ingest(s, [block(7)])).ids as Buffer[];
      await s.store.barrier.sweeping(() => {
        s.store.barrier.begin();
        return Promise.resolve();
      });
      try {
        const r = await ingest(s, [block(7), block(8)]);
        const recorded = new Set(s.store.barrier.drain());
        assert.ok(recorded.has(toHex(old as Buffer)), 'a chunk found present by dedup is recorded');
        assert.ok(recorded.has(toHex(r.ids[1] as Buffer)), 'a chunk written is recorded');
        // While a sweep batch runs, no ingest section can: its commit waits for the sweep.
        const order: string[] = [];
        let release = (): void => undefined;
        const sweep = s.store.barrier.sweeping(() => new Promise<void>((resolve) => (release = resolve)).then(() => void order.push('sweep')));
        const writing = ingest(s, [block(9)]).then(() => void order.push('ingest'));
        await new Promise((resolve) => setTimeout(resolve, 50));
        release();
        await Promise.all([sweep, writing]);
        assert.deepEqual(order, ['sweep', 'ingest']);
      } finally {
        s.store.barrier.end();
      }
    });
  });
}

/*
 * Chunks from a peer site (a replication receive): verify, refuse lying records, store, pin.
 *
 * Invariant (closure): a tree node is stored only once every chunk it references is present,
 * so a node present here means its whole subtree is. A node whose children have not arrived
 * is refused (FAILED_PRECONDITION); a chunk whose bytes do not hash to its id, a node not
 * stored raw, or a node referencing children of the wrong kind is refused as DATA_LOSS. A
 * batch is stored all or nothing.
 *
 * Ordering (services/storage-node/src/gc.ts, case c): the presence checks and the commit run
 * in one `barrier.referencing` section, so children found present stay present until the
 * batch referencing them lands. Every chunk of the batch is pinned, the ones already here
 * too: a resumed session relies on them as much as on what it sent.
 */
import {
  ChunkCorruptError,
  childrenOf,
  decodeNodeChecked,
  FailedPreconditionError,
  isHole,
  rawPayload,
  toHex,
  type Fingerprint,
  type IncomingChunk,
  type PutResult,
  type TreeNode,
} from '@vmferry/core';
import type { ChunkCodec } from './codec-ops.js';
import type { WriteBatch } from './database.js';
import type { GcBarrier } from './gc-barrier.js';
import { checkChildKinds, type NodeReader } from './peer-tree-checks.js';
import type { StoredChunk } from './stored-chunk.js';

/** The parts of the chunk store a receive uses. */
export interface ReceiveDeps extends NodeReader {
  readonly pool: ChunkCodec;
  readonly barrier: GcBarrier;
  /** Writes one batch to the store's storage. */
  commit(fill: (batch: WriteBatch) => void): Promise<void>;
  addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void;
  addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void;
}

/**
 * The ids of `ids` the store lacks (holes never count), in order; the ones it holds are
 * pinned until `pinUntilMs` (a replicator skips their subtrees: gc.ts, case d). The check
 * and the pin are one barrier section.
 */
export function lackingPinned(
  deps: Pick<ReceiveDeps, 'barrier' | 'has' | 'commit' | 'addPins'>,
  ids: readonly Fingerprint[],
  pinUntilMs: number,
): Promise<Fingerprint[]> {
  return deps.barrier.referencing(async () => {
    const present = await deps.has(ids);
    const held = ids.filter((id, i) => present[i] === true && !isHole(id));
    if (held.length > 0) await deps.commit((b) => deps.addPins(b, held, pinUntilMs));
    return ids.filter((id, i) => present[i] !== true && !isHole(id));
  });
}

/** Verifies and stores one batch atomically, pinning it until `pinUntilMs`. */
export function receivePeerChunks(deps: ReceiveDeps, incoming: readonly IncomingChunk[], pinUntilMs: number): Promise<PutResult> {
  return deps.barrier.referencing(() => storeVerified(deps, incoming, pinUntilMs));
}

async function storeVerified(deps: ReceiveDeps, incoming: readonly IncomingChunk[], pinUntilMs: number): Promise<PutResult> {
  const unique = [...new Map(incoming.map((c) => [toHex(c.id), c])).values()];
  const present = await deps.has(unique.map((c) => c.id));
  const fresh = unique.filter((_, i) => !present[i]);
  const decoded = await deps.pool.decode(
    fresh.map((c) => c.record),
    fresh.map((c) => c.id),
  );
  const stored: StoredChunk[] = [];
  const inBatch = new Set(unique.map((c) => toHex(c.id)));
  const nodes = new Map<string, TreeNode>();
  const toCompress: { index: number; raw: Buffer }[] = [];
  for (const [i, c] of fresh.entries()) {
    const d = decoded[i];
    if (!d?.ok) throw new ChunkCorruptError(toHex(c.id), `rejected from the source: ${d?.ok === false ? d.reason : 'undecodable'}`);
    if (c.node) {
      if (rawPayload(c.record) === undefined) throw new ChunkCorruptError(toHex(c.id), 'a tree node must be stored raw');
      const node = await checkChildrenPresent(deps, c.id, d.data, inBatch);
      nodes.set(toHex(c.id), node);
      stored.push({ id: c.id, record: c.record, rawLength: d.data.length, level: node.level });
      continue;
    }
    if (c.compress === true) toCompress.push({ index: stored.length, raw: d.data });
    stored.push({ id: c.id, record: c.record, rawLength: d.data.length });
  }
  await checkChildKinds(deps, nodes, inBatch);
  const compressed = await deps.pool.encode(toCompress.map((t) => t.raw));
  toCompress.forEach((t, k) => {
    const s = stored[t.index] as StoredChunk;
    stored[t.index] = { ...s, record: compressed[k] as Buffer };
  });
  await deps.commit((b) => {
    deps.addPuts(b, stored);
    deps.addPins(
      b,
      unique.map((c) => c.id),
      pinUntilMs,
    );
  });
  return {
    chunksStored: stored.length,
    chunksAlreadyPresent: unique.length - fresh.length,
    bytesStored: stored.reduce((n, s) => n + s.record.length, 0),
  };
}

/** Refuses a node whose children are not all here; returns it decoded. */
async function checkChildrenPresent(deps: ReceiveDeps, id: Fingerprint, raw: Buffer, inBatch: ReadonlySet<string>): Promise<TreeNode> {
  const node = decodeNodeChecked(id, raw);
  const children = [...childrenOf(node)].map((c) => c.id).filter((id) => !inBatch.has(toHex(id)));
  const present = await deps.has(children);
  const absent = children.find((_, i) => !present[i]);
  if (absent) {
    throw new FailedPreconditionError(
      `tree node ${toHex(id).slice(0, 12)} references chunk ${toHex(absent).slice(0, 12)}, which is not here yet: send children before their nodes`,
    );
  }
  return node;
}

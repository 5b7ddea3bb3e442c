import { ChunkCorruptError } from './errors.js';
import { FINGERPRINT_BYTES } from './fingerprint.js';

/*
 * On-disk and on-wire format of a vDisk tree node. DO NOT CHANGE version 1: node fingerprints
 * (and so every snapshot root ever stored or replicated) depend on these exact bytes.
 *
 *   0  'V' 'F' 'T'   magic
 *   3  u8            format version (1)
 *   4  u8            level (0: children are blocks; L > 0: children are level L-1 nodes)
 *   5  u8            form (0 dense, 1 sparse)
 *   6  u16           reserved, 0
 *   8  u32 LE        slots: number of children this node covers (1..fanout)
 *  12  dense:  slots × 32-byte fingerprints (HOLE = 32 zero bytes)
 *      sparse: u32 LE n, then n × (u32 LE slot, 32-byte fingerprint), slots ascending
 *
 * The encoder picks the smaller form, so one node has exactly one encoding. Sparse nodes keep
 * a nearly empty 1 TiB disk's tree small and make snapshots of scattered writes cheap.
 */
export const TREE_FORMAT_VERSION = 1;
const MAGIC = [0x56, 0x46, 0x54] as const;
const HEADER_BYTES = 12;
const SPARSE_ENTRY_BYTES = 4 + FINGERPRINT_BYTES;
/** No node has more children than the tree fanout (TREE_FANOUT, fixed at 1024). */
export const MAX_NODE_SLOTS = 1024;

/** A decoded node: `children` holds `slots` fingerprints back to back, holes as zeros. */
export interface TreeNode {
  readonly level: number;
  readonly slots: number;
  readonly children: Buffer;
}

export function emptyNode(level: number, slots: number): TreeNode {
  return { level, slots, children: Buffer.alloc(slots * FINGERPRINT_BYTES) };
}

export function childAt(node: TreeNode, slot: number): Buffer {
  return node.children.subarray(slot * FINGERPRINT_BYTES, (slot + 1) * FINGERPRINT_BYTES);
}

export function setChild(node: TreeNode, slot: number, fp: Uint8Array): void {
  node.children.set(fp, slot * FINGERPRINT_BYTES);
}

const WORDS_PER_SLOT = FINGERPRINT_BYTES / 4;

/**
 * Slots holding a non-hole child. A word-wise scan (a 1 TiB snapshot of scattered writes
 * touches thousands of 1,024-slot nodes, so this loop is the snapshot's hot path).
 */
export function nonHoleSlots(node: TreeNode): number[] {
  const c = node.children;
  const words = c.byteOffset % 4 === 0 ? new Uint32Array(c.buffer, c.byteOffset, c.length / 4) : new Uint32Array(Uint8Array.from(c).buffer);
  const out: number[] = [];
  for (let s = 0; s < node.slots; s++) {
    const base = s * WORDS_PER_SLOT;
    for (let w = 0; w < WORDS_PER_SLOT; w++) {
      if (words[base + w] !== 0) {
        out.push(s);
        break;
      }
    }
  }
  return out;
}

/** True when every child is a hole (such a node is never stored: its parent records HOLE). */
export function isEmptyNode(node: TreeNode): boolean {
  return nonHoleSlots(node).length === 0;
}

export function encodeNode(node: TreeNode, used: readonly number[] = nonHoleSlots(node)): Buffer {
  const sparse = 4 + used.length * SPARSE_ENTRY_BYTES < node.slots * FINGERPRINT_BYTES;
  const body = sparse ? 4 + used.length * SPARSE_ENTRY_BYTES : node.slots * FINGERPRINT_BYTES;
  const out = Buffer.alloc(HEADER_BYTES + body);
  out.set(MAGIC, 0);
  out[3] = TREE_FORMAT_VERSION;
  out[4] = node.level;
  out[5] = sparse ? 1 : 0;
  out.writeUInt32LE(node.slots, 8);
  if (!sparse) {
    node.children.copy(out, HEADER_BYTES);
    return out;
  }
  out.writeUInt32LE(used.length, HEADER_BYTES);
  let at = HEADER_BYTES + 4;
  for (const s of used) {
    out.writeUInt32LE(s, at);
    childAt(node, s).copy(out, at + 4);
    at += SPARSE_ENTRY_BYTES;
  }
  return out;
}

/** Decodes a node. Throws ChunkCorruptError (naming `id`) for anything malformed. */
export function decodeNode(bytes: Uint8Array, id = '?'): TreeNode {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new ChunkCorruptError(id, `bad tree node: ${why}`);
  };
  if (buf.length < HEADER_BYTES || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1] || buf[2] !== MAGIC[2]) {
    fail('no tree-node magic');
  }
  if (buf[3] !== TREE_FORMAT_VERSION) fail(`unknown format version ${buf[3]}`);
  const level = buf[4] ?? 0;
  const form = buf[5];
  const slots = buf.readUInt32LE(8);
  if (slots < 1) fail('no slots');
  if (slots > MAX_NODE_SLOTS) fail(`${slots} slots is more than ${MAX_NODE_SLOTS}`);
  // Check lengths before allocating or reading past the header: the bytes are untrusted.
  if (form === 0) {
    if (buf.length !== HEADER_BYTES + slots * FINGERPRINT_BYTES) fail('dense length mismatch');
    const node = emptyNode(level, slots);
    buf.copy(node.children, 0, HEADER_BYTES);
    return node;
  }
  if (form !== 1) fail(`unknown form ${form}`);
  if (buf.length < HEADER_BYTES + 4) fail('sparse length mismatch');
  const n = buf.readUInt32LE(HEADER_BYTES);
  if (buf.length !== HEADER_BYTES + 4 + n * SPARSE_ENTRY_BYTES) fail('sparse length mismatch');
  const node = emptyNode(level, slots);
  let at = HEADER_BYTES + 4;
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const slot = buf.readUInt32LE(at);
    if (slot >= slots || slot <= previous) fail('sparse slots out of order');
    previous = slot;
    buf.copy(node.children, slot * FINGERPRINT_BYTES, at + 4, at + SPARSE_ENTRY_BYTES);
    at += SPARSE_ENTRY_BYTES;
  }
  return node;
}

import { rawRecord, type EncodedNode, type Fingerprint } from '@vmferry/core';

/** A chunk ready to store: its id, stored record, and raw length; `level` for a tree node. */
export interface StoredChunk {
  readonly id: Fingerprint;
  readonly record: Buffer;
  readonly rawLength: number;
  /** The tree level of a node (0: its children are data blocks); absent for data. */
  readonly level?: number;
}

/** Tree nodes are stored raw (fingerprints do not compress). */
export function nodeChunk(node: EncodedNode): StoredChunk {
  return { id: node.id, record: rawRecord(node.bytes), rawLength: node.bytes.length, level: node.level };
}

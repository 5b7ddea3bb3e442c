/*
 * A hand-written encoder for vmferry.v1.DiskExtent, the message export streams by the
 * thousand. The generated encoder grows its buffer by doubling and copies the payload four
 * times (concat, growth, finish, Buffer.from); this one sizes the message first and copies
 * each data part once. Field numbers must match storage.proto; a test checks the generated
 * decoder reads what this writes.
 */
import { varintLength, writeVarint } from '../varint.js';

export interface ExtentMessage {
  readonly offset: number;
  /** Data parts, concatenated on the wire; empty for a hole. */
  readonly parts: readonly Buffer[];
  readonly holeLength: number;
  readonly diskSize: number;
}

const TAG_OFFSET = 0x08; // field 1, varint
const TAG_DATA = 0x12; // field 2, length-delimited
const TAG_HOLE_LENGTH = 0x18; // field 3, varint
const TAG_DISK_SIZE = 0x20; // field 4, varint

export function encodeExtent(m: ExtentMessage): Buffer {
  const dataLength = m.parts.reduce((n, p) => n + p.length, 0);
  const size =
    (m.offset ? 1 + varintLength(m.offset) : 0) +
    (dataLength ? 1 + varintLength(dataLength) + dataLength : 0) +
    (m.holeLength ? 1 + varintLength(m.holeLength) : 0) +
    (m.diskSize ? 1 + varintLength(m.diskSize) : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (m.offset) {
    out[at++] = TAG_OFFSET;
    at = writeVarint(out, at, m.offset);
  }
  if (dataLength) {
    out[at++] = TAG_DATA;
    at = writeVarint(out, at, dataLength);
    for (const p of m.parts) at += p.copy(out, at);
  }
  if (m.holeLength) {
    out[at++] = TAG_HOLE_LENGTH;
    at = writeVarint(out, at, m.holeLength);
  }
  if (m.diskSize) {
    out[at++] = TAG_DISK_SIZE;
    at = writeVarint(out, at, m.diskSize);
  }
  return out;
}

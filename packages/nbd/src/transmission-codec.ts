/**
 * Pure codec of the transmission phase: request frames in, simple replies and structured
 * reply chunks out. A decoder returns undefined until the whole request (header and, for a
 * WRITE, its payload) has arrived, and throws NbdProtocolError for a frame that cannot be
 * skipped safely (bad magic; a payload over MAX_PAYLOAD), after which the stream is lost.
 * Each encoder returns every byte of one message, so the caller writes it in one go and no
 * other reply can land inside it.
 */
import type { AllocationRun } from '@vmferry/core';
import type { ByteQueue } from './byte-queue.js';
import {
  CMD,
  MAX_PAYLOAD,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STATE_HOLE,
  STATE_ZERO,
  STRUCTURED_REPLY_MAGIC,
} from './constants.js';
import { NbdProtocolError } from './protocol-error.js';

export const REQUEST_HEADER_BYTES = 28;

export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  /** Opaque, echoed in every reply. */
  readonly cookie: Buffer;
  /** Offsets past 2^53 are clamped to MAX_SAFE_INTEGER: past any export's end either way. */
  readonly offset: number;
  readonly length: number;
  /** The payload of a WRITE (empty otherwise). */
  readonly data: Buffer;
}

export function decodeRequest(q: ByteQueue): NbdRequest | undefined {
  const head = q.peek(REQUEST_HEADER_BYTES);
  if (!head) return undefined;
  const magic = head.readUInt32BE(0);
  if (magic !== REQUEST_MAGIC) throw new NbdProtocolError(`request without the request magic (0x${magic.toString(16)})`);
  const flags = head.readUInt16BE(4);
  const type = head.readUInt16BE(6);
  const offset64 = head.readBigUInt64BE(16);
  const length = head.readUInt32BE(24);
  const payload = type === CMD.WRITE ? length : 0;
  // A READ's length is a payload too (the reply's); both are capped so no client can make the
  // server buffer more than MAX_PAYLOAD for one request.
  if ((type === CMD.WRITE || type === CMD.READ) && length > MAX_PAYLOAD) {
    throw new NbdProtocolError(`request of ${length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
  }
  if (q.length < REQUEST_HEADER_BYTES + payload) return undefined;
  const header = q.take(REQUEST_HEADER_BYTES) as Buffer;
  const cookie = Buffer.from(header.subarray(8, 16));
  const data = payload > 0 ? Buffer.from(q.take(payload) as Buffer) : Buffer.alloc(0);
  const offset = offset64 > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset64);
  return { flags, type, cookie, offset, length, data };
}

/** Simple reply: magic, error, cookie (then, for a successful READ, the data). */
export function encodeSimpleReply(cookie: Buffer, error: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8);
  return b;
}

function chunkHeader(cookie: Buffer, done: boolean, type: number, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(done ? REPLY_FLAG_DONE : 0, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

export function encodeNoneChunk(cookie: Buffer): Buffer {
  return chunkHeader(cookie, true, REPLY_TYPE.NONE, 0);
}

/** OFFSET_DATA: header, u64 offset, then the data (returned separately: no copy). */
export function encodeDataChunk(cookie: Buffer, done: boolean, offset: number, data: Buffer): Buffer[] {
  const head = Buffer.alloc(28);
  chunkHeader(cookie, done, REPLY_TYPE.OFFSET_DATA, 8 + data.length).copy(head, 0);
  head.writeBigUInt64BE(BigInt(offset), 20);
  return [head, data];
}

/** OFFSET_HOLE: u64 offset, u32 size (non-zero). */
export function encodeHoleChunk(cookie: Buffer, done: boolean, offset: number, length: number): Buffer {
  const b = Buffer.alloc(32);
  chunkHeader(cookie, done, REPLY_TYPE.OFFSET_HOLE, 12).copy(b, 0);
  b.writeBigUInt64BE(BigInt(offset), 20);
  b.writeUInt32BE(length, 28);
  return b;
}

/** Error chunk: u32 error, u16 message length, message (cut to the 4096-byte string limit). */
export function encodeErrorChunk(cookie: Buffer, error: number, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > 4096) text = text.subarray(0, 4096);
  const b = Buffer.alloc(26 + text.length);
  chunkHeader(cookie, true, REPLY_TYPE.ERROR, 6 + text.length).copy(b, 0);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(text.length, 24);
  text.copy(b, 26);
  return b;
}

/** BLOCK_STATUS for base:allocation: u32 context id, (u32 length, u32 flags) per run. */
export function encodeBlockStatusChunk(cookie: Buffer, done: boolean, contextId: number, runs: readonly AllocationRun[]): Buffer {
  const b = Buffer.alloc(24 + 8 * runs.length);
  chunkHeader(cookie, done, REPLY_TYPE.BLOCK_STATUS, 4 + 8 * runs.length).copy(b, 0);
  b.writeUInt32BE(contextId, 20);
  runs.forEach((r, i) => {
    b.writeUInt32BE(r.length, 24 + 8 * i);
    b.writeUInt32BE(r.hole ? STATE_HOLE | STATE_ZERO : 0, 28 + 8 * i);
  });
  return b;
}

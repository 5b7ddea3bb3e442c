/**
 * Pure codec of the handshake phase (fixed newstyle): the server greeting, the client's flags,
 * option frames and the payloads of the options served. Decoders return undefined until a
 * whole frame has arrived and throw NbdProtocolError on a frame no correct client sends.
 */
import { InvalidArgumentError } from '@vmferry/core';
import type { ByteQueue } from './byte-queue.js';
import {
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO,
  MAX_OPTION_DATA,
  MAX_STRING,
  NBDMAGIC,
  OPTION_REPLY_MAGIC,
} from './constants.js';
import { NbdProtocolError } from './protocol-error.js';

/** NBDMAGIC, IHAVEOPT, handshake flags (fixed newstyle, no zeroes). */
export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export interface ClientFlags {
  readonly fixedNewstyle: boolean;
  readonly noZeroes: boolean;
}

/** The client's 32-bit flags; an unknown bit must drop the connection (proto.md). */
export function decodeClientFlags(q: ByteQueue): ClientFlags | undefined {
  const b = q.take(4);
  if (!b) return undefined;
  const flags = b.readUInt32BE(0);
  if ((flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) !== 0) {
    throw new NbdProtocolError(`client flags 0x${flags.toString(16)} carry bits the server did not offer`);
  }
  return { fixedNewstyle: (flags & FLAG_C_FIXED_NEWSTYLE) !== 0, noZeroes: (flags & FLAG_C_NO_ZEROES) !== 0 };
}

export interface OptionFrame {
  readonly option: number;
  readonly data: Buffer;
}

/** IHAVEOPT, u32 option, u32 length, data. */
export function decodeOption(q: ByteQueue): OptionFrame | undefined {
  const head = q.peek(16);
  if (!head) return undefined;
  if (head.readBigUInt64BE(0) !== IHAVEOPT) throw new NbdProtocolError('option frame without the IHAVEOPT magic');
  const option = head.readUInt32BE(8);
  const length = head.readUInt32BE(12);
  if (length > MAX_OPTION_DATA) throw new NbdProtocolError(`option ${option} carries ${length} bytes; at most ${MAX_OPTION_DATA} are accepted`);
  if (q.length < 16 + length) return undefined;
  q.take(16);
  return { option, data: Buffer.from(q.take(length) as Buffer) };
}

/** An option reply: magic, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** Reply to NBD_OPT_EXPORT_NAME: size, transmission flags, 124 zeroes unless NO_ZEROES. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export function encodeInfoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(INFO.EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function encodeInfoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(INFO.BLOCK_SIZE, 0);
  b.writeUInt32BE(minimum, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(maximum, 10);
  return b;
}

/** NBD_REP_SERVER data: u32 name length, name. */
export function encodeServerEntry(name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return b;
}

/** NBD_REP_META_CONTEXT data: u32 id, name. */
export function encodeMetaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

/** A payload that does not parse: answered with NBD_REP_ERR_INVALID, the session goes on. */
export class BadOptionData extends InvalidArgumentError {}

function readString(data: Buffer, at: number, length: number, what: string): string {
  if (length > MAX_STRING) throw new BadOptionData(`${what} is ${length} bytes; at most ${MAX_STRING}`);
  if (at + length > data.length) throw new BadOptionData(`${what} runs past the option's data`);
  return data.toString('utf8', at, at + length);
}

export interface InfoRequest {
  readonly name: string;
  readonly requests: readonly number[];
}

/** NBD_OPT_INFO / NBD_OPT_GO data: u32 name length, name, u16 count, u16 × count. */
export function decodeInfoRequest(data: Buffer): InfoRequest {
  if (data.length < 6) throw new BadOptionData('INFO/GO data shorter than 6 bytes');
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) throw new BadOptionData('export name runs past the option data');
  const name = readString(data, 4, nameLength, 'export name');
  const count = data.readUInt16BE(4 + nameLength);
  if (6 + nameLength + 2 * count !== data.length) throw new BadOptionData(`INFO/GO lists ${count} requests but carries ${data.length} bytes`);
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(data.readUInt16BE(6 + nameLength + 2 * i));
  return { name, requests };
}

export interface MetaContextRequest {
  readonly name: string;
  readonly queries: readonly string[];
}

/** LIST/SET_META_CONTEXT data: u32 name length, name, u32 count, (u32 length, query) × count. */
export function decodeMetaContextRequest(data: Buffer): MetaContextRequest {
  if (data.length < 8) throw new BadOptionData('meta context data shorter than 8 bytes');
  const nameLength = data.readUInt32BE(0);
  if (4 + nameLength + 4 > data.length) throw new BadOptionData('export name runs past the option data');
  const name = readString(data, 4, nameLength, 'export name');
  let at = 4 + nameLength;
  const count = data.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) throw new BadOptionData(`query ${i} runs past the option data`);
    const len = data.readUInt32BE(at);
    queries.push(readString(data, at + 4, len, `query ${i}`));
    at += 4 + len;
  }
  if (at !== data.length) throw new BadOptionData('meta context data has trailing bytes');
  return { name, queries };
}

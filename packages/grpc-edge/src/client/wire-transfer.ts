/*
 * Hand-written codecs for the two messages a transfer sends by the thousand from the client:
 * ImportVmRequest carrying data (import), and DiskExtent (export). The generated encoder
 * copies a payload twice (finish, then Buffer.from) and the generated decoder copies it once
 * more (Buffer.from); these size the message first and copy the payload once (encode) or not
 * at all (decode: the data is a view into the received message, which nothing else holds).
 * Field numbers must match storage.proto; a test checks each against the generated codec.
 */
import { DiskExtent, ImportVmRequest } from '@vmferry/proto';
import { varintLength, writeVarint } from '../varint.js';

const TAG_IMPORT_DATA = 0x12; // ImportVmRequest.data: field 2, length-delimited
const TAG_DISK_INDEX = 0x08; // ImportData.disk_index: field 1, varint
const TAG_OFFSET = 0x10; // ImportData.offset: field 2, varint
const TAG_DATA = 0x1a; // ImportData.data: field 3, length-delimited

/** ImportVmRequest as bytes: data messages by hand, the header and end marker by the generated code. */
export function encodeImportRequest(m: ImportVmRequest): Buffer {
  if (m.kind?.$case !== 'data') return Buffer.from(ImportVmRequest.encode(m).finish());
  const { diskIndex, offset, data } = m.kind.value;
  const inner =
    (diskIndex ? 1 + varintLength(diskIndex) : 0) + (offset ? 1 + varintLength(offset) : 0) + (data.length ? 1 + varintLength(data.length) + data.length : 0);
  const out = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  out[0] = TAG_IMPORT_DATA;
  let at = writeVarint(out, 1, inner);
  if (diskIndex) {
    out[at++] = TAG_DISK_INDEX;
    at = writeVarint(out, at, diskIndex);
  }
  if (offset) {
    out[at++] = TAG_OFFSET;
    at = writeVarint(out, at, offset);
  }
  if (data.length) {
    out[at++] = TAG_DATA;
    at = writeVarint(out, at, data.length);
    data.copy(out, at);
  }
  return out;
}

/**
 * DiskExtent from bytes, `data` a view into `buf`. Unknown fields are skipped, as the
 * generated decoder does; a truncated or malformed message throws.
 */
export function decodeExtent(buf: Buffer): DiskExtent {
  const m: DiskExtent = { offset: 0, data: Buffer.alloc(0), holeLength: 0, diskSize: 0 };
  let at = 0;
  const varint = (): number => {
    let n = 0;
    for (let scale = 1; ; scale *= 128) {
      if (at >= buf.length) throw new Error('DiskExtent: truncated varint');
      const b = buf[at++] as number;
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      if (scale > 2 ** 56) throw new Error('DiskExtent: varint too long');
    }
    if (!Number.isSafeInteger(n)) throw new Error(`DiskExtent: ${n} is past 2^53`);
    return n;
  };
  while (at < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      const v = varint();
      if (field === 1) m.offset = v;
      else if (field === 3) m.holeLength = v;
      else if (field === 4) m.diskSize = v;
    } else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new Error('DiskExtent: truncated field');
      if (field === 2) m.data = buf.subarray(at, at + len);
      at += len;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
      if (at > buf.length) throw new Error('DiskExtent: truncated field');
    } else {
      throw new Error(`DiskExtent: wire type ${wire} of field ${field}`);
    }
  }
  return m;
}

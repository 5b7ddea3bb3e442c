/**
 * The pure codecs: frames decode the same however the bytes are split, oversized or
 * mis-magicked frames are refused, and encoders produce the layouts of proto.md.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ByteQueue,
  CMD,
  IHAVEOPT,
  MAX_PAYLOAD,
  NbdProtocolError,
  OPT,
  REQUEST_MAGIC,
  decodeClientFlags,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOption,
  decodeRequest,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeGreeting,
  encodeHoleChunk,
  encodeSimpleReply,
  type NbdRequest,
} from '../src/index.js';

function request(type: number, offset: bigint, length: number, data = Buffer.alloc(0), flags = 0): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.write('cookie!!', 8, 'latin1');
  b.writeBigUInt64BE(offset, 16);
  b.writeUInt32BE(length, 24);
  return Buffer.concat([b, data]);
}

function option(opt: number, data: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(opt, 8);
  b.writeUInt32BE(data.length, 12);
  return Buffer.concat([b, data]);
}

/** Feeds `bytes` cut at `cut` and decodes everything. */
function decodeAllSplit(bytes: Buffer, cut: number): NbdRequest[] {
  const q = new ByteQueue();
  const out: NbdRequest[] = [];
  for (const part of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
    q.push(part);
    for (let r = decodeRequest(q); r; r = decodeRequest(q)) out.push(r);
  }
  assert.equal(q.length, 0);
  return out;
}

describe('ByteQueue', () => {
  test('peek and take across parts', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('ab'));
    q.push(Buffer.from('cde'));
    assert.equal(q.peek(6), undefined);
    assert.equal(q.peek(3)?.toString(), 'abc');
    assert.equal(q.take(4)?.toString(), 'abcd');
    assert.equal(q.take(2), undefined);
    assert.equal(q.take(1)?.toString(), 'e');
    assert.equal(q.length, 0);
  });
});

describe('requests', () => {
  const payload = Buffer.from('0123456789abcdef'.repeat(64));
  const stream = Buffer.concat([request(CMD.WRITE, 4096n, payload.length, payload, 1), request(CMD.READ, 0n, 512), request(CMD.FLUSH, 0n, 0)]);

  test('decode the same at every split point', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const rs = decodeAllSplit(stream, cut);
      assert.deepEqual(
        rs.map((r) => [r.type, r.flags, r.offset, r.length, r.cookie.toString('latin1')]),
        [
          [CMD.WRITE, 1, 4096, payload.length, 'cookie!!'],
          [CMD.READ, 0, 0, 512, 'cookie!!'],
          [CMD.FLUSH, 0, 0, 0, 'cookie!!'],
        ],
      );
      assert.deepEqual(rs[0]?.data, payload);
    }
  });

  test('one byte at a time', () => {
    const q = new ByteQueue();
    const out: NbdRequest[] = [];
    for (const byte of stream) {
      q.push(Buffer.from([byte]));
      for (let r = decodeRequest(q); r; r = decodeRequest(q)) out.push(r);
    }
    assert.equal(out.length, 3);
  });

  test('a payload over the limit is refused from its header alone', () => {
    const q = new ByteQueue();
    q.push(request(CMD.WRITE, 0n, MAX_PAYLOAD + 1).subarray(0, 28));
    assert.throws(() => decodeRequest(q), NbdProtocolError);
    const r = new ByteQueue();
    r.push(request(CMD.READ, 0n, MAX_PAYLOAD + 1));
    assert.throws(() => decodeRequest(r), NbdProtocolError);
    // TRIM has no payload: a large length is fine (range-checked later).
    const t = new ByteQueue();
    t.push(request(CMD.TRIM, 0n, 0xffffffff));
    assert.equal(decodeRequest(t)?.length, 0xffffffff);
  });

  test('bad magic is refused', () => {
    const q = new ByteQueue();
    const bad = request(CMD.READ, 0n, 512);
    bad.writeUInt32BE(0xdeadbeef, 0);
    q.push(bad);
    assert.throws(() => decodeRequest(q), NbdProtocolError);
  });

  test('an offset past 2^53 is clamped (past any export)', () => {
    const q = new ByteQueue();
    q.push(request(CMD.READ, 0xffffffffffffffffn, 512));
    assert.equal(decodeRequest(q)?.offset, Number.MAX_SAFE_INTEGER);
  });
});

describe('handshake', () => {
  test('greeting layout', () => {
    const g = encodeGreeting();
    assert.equal(g.toString('latin1', 0, 16), 'NBDMAGICIHAVEOPT');
    assert.equal(g.readUInt16BE(16), 3);
  });

  test('client flags: unknown bits are a protocol error', () => {
    const q = new ByteQueue();
    q.push(Buffer.from([0, 0, 0]));
    assert.equal(decodeClientFlags(q), undefined);
    q.push(Buffer.from([3]));
    assert.deepEqual(decodeClientFlags(q), { fixedNewstyle: true, noZeroes: true });
    q.push(Buffer.from([0, 0, 0, 4]));
    assert.throws(() => decodeClientFlags(q), NbdProtocolError);
  });

  test('options decode at every split point; oversized data is refused', () => {
    const name = Buffer.from('web/0');
    const go = Buffer.alloc(4 + name.length + 4);
    go.writeUInt32BE(name.length, 0);
    name.copy(go, 4);
    go.writeUInt16BE(1, 4 + name.length);
    go.writeUInt16BE(3, 6 + name.length);
    const bytes = option(OPT.GO, go);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const q = new ByteQueue();
      q.push(bytes.subarray(0, cut));
      const early = decodeOption(q);
      q.push(bytes.subarray(cut));
      const frame = early ?? decodeOption(q);
      assert.equal(frame?.option, OPT.GO);
      assert.deepEqual(decodeInfoRequest(frame.data), { name: 'web/0', requests: [3] });
    }
    const big = new ByteQueue();
    big.push(option(OPT.GO, Buffer.alloc(0)).subarray(0, 12));
    big.push(Buffer.from([0, 1, 0, 1]));
    assert.throws(() => decodeOption(big), NbdProtocolError);
  });

  test('malformed option payloads are invalid, not fatal', () => {
    assert.throws(() => decodeInfoRequest(Buffer.from([0, 0, 0, 9, 0, 0])), /runs past/);
    const meta = Buffer.alloc(4 + 5 + 4 + 4 + 15);
    meta.writeUInt32BE(5, 0);
    meta.write('web/0', 4);
    meta.writeUInt32BE(1, 9);
    meta.writeUInt32BE(15, 13);
    meta.write('base:allocation', 17);
    assert.deepEqual(decodeMetaContextRequest(meta), { name: 'web/0', queries: ['base:allocation'] });
    assert.throws(() => decodeMetaContextRequest(meta.subarray(0, meta.length - 1)), /runs past/);
  });
});

describe('replies', () => {
  const cookie = Buffer.from('cookie!!', 'latin1');
  test('simple, hole, error and block status layouts', () => {
    const s = encodeSimpleReply(cookie, 22);
    assert.equal(s.readUInt32BE(0), 0x67446698);
    assert.equal(s.readUInt32BE(4), 22);
    const h = encodeHoleChunk(cookie, true, 4096, 512);
    assert.equal(h.readUInt32BE(0), 0x668e33ef);
    assert.equal(h.readUInt16BE(4), 1);
    assert.equal(h.readUInt16BE(6), 2);
    assert.equal(h.readUInt32BE(16), 12);
    assert.equal(h.readUInt32BE(28), 512);
    const e = encodeErrorChunk(cookie, 5, 'x'.repeat(5000));
    assert.equal(e.readUInt16BE(24), 4096);
    assert.equal(e.length, 26 + 4096);
    const b = encodeBlockStatusChunk(cookie, true, 1, [
      { length: 65536, hole: false },
      { length: 4096, hole: true },
    ]);
    assert.equal(b.readUInt32BE(16), 4 + 16);
    assert.equal(b.readUInt32BE(36), 3);
  });
});

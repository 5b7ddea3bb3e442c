import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskExtent } from '@vmferry/proto';
import { encodeExtent } from '../src/server/wire-extent.js';

test('the hand-written DiskExtent encoder is read back by the generated decoder', () => {
  const cases = [
    { offset: 0, parts: [], holeLength: 0, diskSize: 0 },
    { offset: 123, parts: [Buffer.from('abc'), Buffer.from('defg')], holeLength: 0, diskSize: 2 ** 40 },
    { offset: 2 ** 52 + 1, parts: [], holeLength: 2 ** 45 + 7, diskSize: 0 },
    { offset: 127, parts: [Buffer.alloc(200_000, 9)], holeLength: 0, diskSize: 128 },
  ];
  for (const c of cases) {
    const decoded = DiskExtent.decode(encodeExtent(c));
    assert.equal(decoded.offset, c.offset);
    assert.deepEqual(decoded.data, Buffer.concat(c.parts));
    assert.equal(decoded.holeLength, c.holeLength);
    assert.equal(decoded.diskSize, c.diskSize);
  }
});

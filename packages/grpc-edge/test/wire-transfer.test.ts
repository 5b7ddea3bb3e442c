import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskExtent, ImportVmRequest } from '@vmferry/proto';
import { decodeExtent, encodeImportRequest } from '../src/client/wire-transfer.js';

test('the hand-written import encoder is read back by the generated decoder', () => {
  const cases: ImportVmRequest[] = [
    { kind: { $case: 'data', value: { diskIndex: 0, offset: 0, data: Buffer.alloc(0) } } },
    { kind: { $case: 'data', value: { diskIndex: 3, offset: 2 ** 52 + 4096, data: Buffer.from('abc') } } },
    { kind: { $case: 'data', value: { diskIndex: 0, offset: 127, data: Buffer.alloc(4 * 1024 * 1024, 7) } } },
    { kind: { $case: 'header', value: { name: 'vm', disks: [{ size: 2 ** 40, blockSize: 65536 }], hypervisorConfig: Buffer.from('x') } } },
    { kind: { $case: 'end', value: { dataBytes: 12345 } } },
  ];
  for (const c of cases) {
    const bytes = encodeImportRequest(c);
    assert.deepEqual(ImportVmRequest.decode(bytes), ImportVmRequest.decode(ImportVmRequest.encode(c).finish()));
    assert.deepEqual(bytes, Buffer.from(ImportVmRequest.encode(c).finish()), 'the same bytes as the generated encoder');
  }
});

test('the hand-written extent decoder reads what the generated encoder writes, data as a view', () => {
  const cases: DiskExtent[] = [
    { offset: 0, data: Buffer.alloc(0), holeLength: 0, diskSize: 0 },
    { offset: 123, data: Buffer.from('abcdefg'), holeLength: 0, diskSize: 2 ** 40 },
    { offset: 2 ** 52 + 1, data: Buffer.alloc(0), holeLength: 2 ** 45 + 7, diskSize: 0 },
    { offset: 127, data: Buffer.alloc(200_000, 9), holeLength: 0, diskSize: 128 },
  ];
  for (const c of cases) {
    const wire = Buffer.from(DiskExtent.encode(c).finish());
    const m = decodeExtent(wire);
    assert.deepEqual(m, DiskExtent.decode(wire));
    if (c.data.length > 0) assert.equal(m.data.buffer, wire.buffer, 'no copy of the data');
  }
});

test('the extent decoder skips unknown fields and refuses a truncated message', () => {
  const known = Buffer.from(DiskExtent.encode({ offset: 5, data: Buffer.from('hi'), holeLength: 0, diskSize: 0 }).finish());
  // Field 9 varint, field 10 bytes, field 11 fixed64, field 12 fixed32: a newer node's additions.
  const extra = Buffer.from([0x48, 0x96, 0x01, 0x52, 0x02, 0xaa, 0xbb, 0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0x65, 1, 2, 3, 4]);
  const m = decodeExtent(Buffer.concat([known, extra]));
  assert.equal(m.offset, 5);
  assert.deepEqual(m.data, Buffer.from('hi'));
  assert.throws(() => decodeExtent(known.subarray(0, known.length - 1)), /truncated/);
  assert.throws(() => decodeExtent(Buffer.from([0x08, 0x80])), /truncated varint/);
});

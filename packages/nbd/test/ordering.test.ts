/**
 * Request ordering on one connection (transmission.ts): non-overlapping requests run at once,
 * overlapping ones and FLUSH keep their order. The backend here is a recording export whose
 * calls finish only when the test says so, so the test sees exactly what started when.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AllocationRun, BlockExport, ReadPiece } from '@vmferry/core';
import { CMD } from '../src/constants.js';
import { Transmission } from '../src/transmission.js';

/** An export whose every call waits for `finish(label)`; `started` lists calls in start order. */
function gatedExport(): { exp: BlockExport; started: string[]; finish: (label: string) => void } {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const wait = (label: string): Promise<void> =>
    new Promise((resolve) => {
      started.push(label);
      gates.set(label, resolve);
    });
  const exp: BlockExport = {
    name: 'x',
    size: 1 << 20,
    readOnly: false,
    preferredBlockSize: 4096,
    async *read(offset: number, length: number): AsyncGenerator<ReadPiece> {
      await wait(`read ${offset}`);
      yield { offset, length, data: Buffer.alloc(length) };
    },
    write: (offset: number) => wait(`write ${offset}`),
    flush: () => wait('flush'),
    trim: (offset: number) => wait(`trim ${offset}`),
    zero: (offset: number) => wait(`zero ${offset}`),
    allocation: (): Promise<AllocationRun[]> => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
  return {
    exp,
    started,
    finish: (label) => {
      const g = gates.get(label);
      assert.ok(g, `${label} has not started (started: ${started.join(', ')})`);
      gates.delete(label);
      g();
    },
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('non-overlapping writes and reads run at once; an overlapping read waits for the write; FLUSH waits for every earlier write', async () => {
  const { exp, started, finish } = gatedExport();
  const replies: number[] = [];
  const t = new Transmission(
    { export: exp, structured: false, allocationContext: false, flags: 0 },
    { send: (parts) => replies.push((parts[0] as Buffer).readUInt32BE(12)), settled: () => undefined, exportGone: () => undefined },
  );
  const req = (type: number, offset: number, length: number, handle: number) => {
    const cookie = Buffer.alloc(8);
    cookie.writeUInt32BE(handle, 4);
    return { flags: 0, type, cookie, offset, length, data: Buffer.alloc(type === CMD.WRITE ? length : 0) };
  };
  t.accept(req(CMD.WRITE, 0, 4096, 1));
  t.accept(req(CMD.WRITE, 8192, 4096, 2));
  t.accept(req(CMD.READ, 0, 4096, 3)); // overlaps write 1
  t.accept(req(CMD.READ, 16384, 4096, 4)); // overlaps nothing
  t.accept(req(CMD.FLUSH, 0, 0, 5));
  t.accept(req(CMD.WRITE, 8192, 4096, 6)); // overlaps write 2
  await settle();
  assert.deepEqual(started, ['write 0', 'write 8192', 'read 16384']);
  finish('write 8192');
  await settle();
  assert.deepEqual(started, ['write 0', 'write 8192', 'read 16384', 'write 8192'], 'the second write of 8192 starts once the first is done');
  finish('write 0');
  await settle();
  assert.deepEqual(
    started.slice(4).sort(),
    ['flush', 'read 0'],
    'the overlapping read and the FLUSH start once write 0 is done (FLUSH does not wait for the later write)',
  );
  finish('write 8192');
  finish('read 0');
  finish('read 16384');
  finish('flush');
  await t.drain();
  assert.deepEqual(
    [...replies].sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6],
  );
  assert.ok(replies.indexOf(2) < replies.indexOf(6) && replies.indexOf(1) < replies.indexOf(3));
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { IdSource, isId } from '../src/index.js';

const sorted = (xs: readonly string[]): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** A clock the test sets. */
function manualClock(startMs: number): { now: () => number; set(ms: number): void } {
  let t = startMs;
  return { now: () => t, set: (ms) => void (t = ms) };
}

describe('IdSource', () => {
  test('ids are 26 Crockford base32 characters', () => {
    const ids = new IdSource();
    for (let i = 0; i < 100; i++) {
      const id = ids.next();
      assert.equal(id.length, 26);
      assert.ok(isId(id), id);
      assert.doesNotMatch(id, /[ILOU]/);
    }
  });

  test('ids are unique and sort in creation order, many per millisecond', () => {
    const ids = new IdSource();
    const made: string[] = [];
    const start = Date.now();
    for (let i = 0; i < 20_000; i++) made.push(ids.next());
    assert.ok(Date.now() - start < made.length, 'several ids were made in the same millisecond');
    assert.equal(new Set(made).size, made.length);
    assert.deepEqual(sorted(made), made);
  });

  test('ids from a fixed clock still sort in creation order', () => {
    const ids = new IdSource({ now: () => 1_700_000_000_000 });
    const made = Array.from({ length: 5000 }, () => ids.next());
    assert.deepEqual(sorted(made), made);
    assert.equal(new Set(made).size, made.length);
  });

  test('a clock stepping backwards does not break the order', () => {
    const clock = manualClock(1_700_000_000_000);
    const ids = new IdSource({ now: clock.now });
    const a = ids.next();
    clock.set(1_700_000_000_000 - 3_600_000);
    const b = ids.next();
    clock.set(0);
    const c = ids.next();
    assert.ok(a < b && b < c, `${a} ${b} ${c}`);
  });

  test('the time prefix encodes the millisecond, so ids sort by time across processes', () => {
    const clock = manualClock(1_700_000_010_000);
    const ids = new IdSource({ now: clock.now });
    const x = ids.next();
    clock.set(1_700_000_010_001);
    const y = ids.next();
    assert.ok(x < y);
    assert.notEqual(x.slice(0, 10), y.slice(0, 10));
    assert.equal(y.slice(10, 14), '0000', 'the sequence restarts in a new millisecond');
    // Two sources (two processes) on one clock: the later millisecond sorts later.
    assert.ok(new IdSource({ now: () => 1_700_000_010_001 }).next() > x);
  });

  test('more ids in one millisecond than the sequence holds still sort in order', () => {
    const ids = new IdSource({ now: () => 1_700_000_020_000 });
    const n = 2 ** 20 + 3;
    let prev = ids.next();
    let outOfOrder = 0;
    for (let i = 1; i < n; i++) {
      const id = ids.next();
      if (!(id > prev)) outOfOrder++;
      prev = id;
    }
    assert.equal(outOfOrder, 0);
  });

  test('the random tail comes from the injected source', () => {
    const ids = new IdSource({ now: () => 0, random: (n) => new Uint8Array(n).fill(31) });
    assert.equal(ids.next(), `${'0'.repeat(14)}${'Z'.repeat(12)}`);
  });

  test('sources are independent: no state shared between them', () => {
    const a = new IdSource({ now: () => 5 });
    a.next();
    a.next();
    assert.equal(new IdSource({ now: () => 5 }).next().slice(10, 14), '0000');
  });
});

describe('isId', () => {
  test('rejects strings not shaped like ids', () => {
    assert.ok(!isId(''));
    assert.ok(!isId('01HV5Z3K8Q0000ABCDEFGHJK')); // 24 characters
    assert.ok(!isId('01hv5z3k8q0000abcdefghjkmn'));
    assert.ok(!isId('01HV5Z3K8Q0000ABCDEFGHJKLU'));
    assert.ok(isId('01HV5Z3K8Q0000ABCDEFGHJKMN'));
  });
});

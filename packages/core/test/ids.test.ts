import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isId, newId } from '../src/index.js';

const sorted = (xs: readonly string[]): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

describe('newId', () => {
  test('ids are 26 Crockford base32 characters', () => {
    for (let i = 0; i < 100; i++) {
      const id = newId();
      assert.equal(id.length, 26);
      assert.ok(isId(id), id);
      assert.doesNotMatch(id, /[ILOU]/);
    }
  });

  test('ids are unique and sort in creation order, many per millisecond', () => {
    const ids: string[] = [];
    const start = Date.now();
    for (let i = 0; i < 20_000; i++) ids.push(newId());
    assert.ok(Date.now() - start < ids.length, 'several ids were made in the same millisecond');
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual(sorted(ids), ids);
  });

  test('ids from a fixed clock still sort in creation order', () => {
    const t = Date.now() + 1000;
    const ids = Array.from({ length: 5000 }, () => newId(t));
    assert.deepEqual(sorted(ids), ids);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('a clock stepping backwards does not break the order', () => {
    const a = newId();
    const b = newId(Date.now() - 3_600_000);
    const c = newId(0);
    assert.ok(a < b && b < c, `${a} ${b} ${c}`);
  });

  test('the time prefix encodes the millisecond, so ids sort by time across processes', () => {
    const t = Date.now() + 10_000;
    const x = newId(t);
    const y = newId(t + 1);
    assert.ok(x < y);
    assert.notEqual(x.slice(0, 10), y.slice(0, 10));
    assert.equal(x.slice(10, 14), '0000', 'the sequence restarts in a new millisecond');
  });

  test('more ids in one millisecond than the sequence holds still sort in order', () => {
    const t = Date.now() + 20_000;
    const n = 2 ** 20 + 3;
    let prev = newId(t);
    let outOfOrder = 0;
    for (let i = 1; i < n; i++) {
      const id = newId(t);
      if (!(id > prev)) outOfOrder++;
      prev = id;
    }
    assert.equal(outOfOrder, 0);
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

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, IdSource } from '@vmferry/core';
import { keys } from '../src/index.js';

const ids = new IdSource();

describe('key builders', () => {
  const bad = ['', 'x/../y', 'short', `${ids.next()}0`, 'a'.repeat(26)];
  const vm = ids.next();
  const snap = ids.next();

  test('refuse an empty or malformed VM id, so no VM prefix can cover other VMs', () => {
    const builders: ((id: string) => Buffer)[] = [
      (id) => keys.vmKey(id),
      (id) => keys.snapshotKey(id, snap),
      (id) => keys.snapshotPrefix(id),
      (id) => keys.dirtyKey(id, 0, 0),
      (id) => keys.dirtyDiskPrefix(id, 0),
      (id) => keys.dirtyVmPrefix(id),
      (id) => keys.baseKey(id, 'siteA'),
      (id) => keys.basePrefix(id),
      (id) => keys.pendingKey(id, snap, 'siteA'),
      (id) => keys.pendingPrefix(id, snap),
      (id) => keys.pendingVmPrefix(id),
    ];
    for (const build of builders) {
      for (const id of bad)
        assert.throws(
          () => build(id),
          (e: unknown) => e instanceof InvalidArgumentError && /VM id/.test(e.message),
          `${String(build)} '${id}'`,
        );
      assert.ok(build(vm).length > 26);
    }
  });

  test('refuse an empty or malformed snapshot id and an empty site name', () => {
    for (const id of bad) {
      assert.throws(() => keys.snapshotKey(vm, id), /snapshot id/);
      assert.throws(() => keys.pendingKey(vm, id, 'siteA'), /snapshot id/);
      assert.throws(() => keys.pendingPrefix(vm, id), /snapshot id/);
    }
    assert.throws(() => keys.siteKey(''), InvalidArgumentError);
    assert.throws(() => keys.baseKey(vm, ''), InvalidArgumentError);
    assert.throws(() => keys.pendingKey(vm, snap, ''), InvalidArgumentError);
  });

  test('a valid VM prefix covers exactly that VM', () => {
    const other = ids.next();
    const r = keys.prefixRange(keys.dirtyVmPrefix(vm));
    const inside = keys.dirtyKey(vm, 3, 99);
    const outside = keys.dirtyKey(other, 0, 0);
    assert.ok(Buffer.compare(inside, r.gte) >= 0 && Buffer.compare(inside, r.lt) < 0);
    assert.ok(!(Buffer.compare(outside, r.gte) >= 0 && Buffer.compare(outside, r.lt) < 0));
  });
});

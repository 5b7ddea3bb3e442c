import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertOwned,
  checkFence,
  FailedPreconditionError,
  HOLE,
  IdSource,
  InvalidArgumentError,
  knownEpoch,
  promotionEpoch,
  toHex,
  validateEpoch,
  validateReplicaRecord,
  writeRefusal,
  type VmRecord,
} from '../src/index.js';

const ids = new IdSource();
const vm = (extra: Partial<VmRecord> = {}): VmRecord => ({
  id: ids.next(),
  name: 'gold',
  createdAtMs: 1,
  homeSite: 'siteA',
  hypervisorConfig: '',
  disks: [{ index: 0, size: 1 << 20, blockSize: 65536, gridOffset: 0, root: toHex(HOLE) }],
  ...extra,
});

describe('ownership epochs and fencing', () => {
  test('an owned copy is writable; a replica or a fenced copy is not, and the refusal names the owner', () => {
    assert.equal(writeRefusal(vm()), undefined);
    assert.match(writeRefusal(vm({ replicaOf: 'siteA' })) ?? '', /read-only replica of site siteA/);
    assert.throws(
      () => assertOwned(vm({ epoch: 1, fencedBy: { site: 'siteB', epoch: 2 } })),
      (e: unknown) => {
        assert.ok(e instanceof FailedPreconditionError);
        assert.match(e.message, /fenced here: site siteB owns it since epoch 2 \(this copy: epoch 1\)/);
        return true;
      },
    );
  });

  test('a fence must be above what the copy knows; the same fence again is a no-op', () => {
    const owned = vm({ epoch: 3 });
    assert.equal(checkFence(owned, 'siteA', 'siteB', 4), true);
    assert.throws(() => checkFence(owned, 'siteA', 'siteB', 3), /claims VM 'gold' at epoch 3, but this copy knows epoch 3/);
    assert.throws(() => checkFence(owned, 'siteA', 'siteA', 9), /cannot be fenced by its own site/);
    assert.throws(() => checkFence(vm({ replicaOf: 'siteB' }), 'siteA', 'siteB', 9), /is a replica of site siteB/);
    const fenced = vm({ epoch: 3, fencedBy: { site: 'siteB', epoch: 4 } });
    assert.equal(checkFence(fenced, 'siteA', 'siteB', 4), false);
    assert.throws(() => checkFence(fenced, 'siteA', 'siteC', 4), /knows epoch 4 \(owned by site siteB\)/);
    assert.equal(checkFence(fenced, 'siteA', 'siteC', 5), true);
  });

  test('a promotion goes above every known epoch; an owned VM is not promoted', () => {
    assert.equal(promotionEpoch(vm({ replicaOf: 'siteA', epoch: 2 }), 0), 3);
    assert.equal(promotionEpoch(vm({ epoch: 1, fencedBy: { site: 'siteB', epoch: 5 } }), 0), 6);
    assert.equal(promotionEpoch(vm({ replicaOf: 'siteA', epoch: 2 }), 7), 7);
    assert.equal(knownEpoch(vm({ epoch: 1, fencedBy: { site: 'siteB', epoch: 5 } })), 5);
    assert.throws(() => promotionEpoch(vm({ replicaOf: 'siteA', epoch: 2 }), 2), /at epoch 2 refused: this copy knows epoch 2/);
    assert.throws(() => promotionEpoch(vm({ epoch: 4 }), 0), /not a replica or a fenced copy here: it is the writable VM already \(epoch 4\)/);
  });

  test('epochs from a peer or a user are whole numbers in range', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) assert.throws(() => validateEpoch(bad, 'owner epoch'), InvalidArgumentError);
    assert.equal(validateEpoch(0, 'epoch'), 0);
  });

  test("a peer's replica record with a bad epoch is refused, naming the field", () => {
    const v = vm({ epoch: -3 });
    const snapshot = { id: ids.next(), vmId: v.id, createdAtMs: 2, consistency: 'crash' as const, origin: 'manual', disks: v.disks, dirtyBlocks: 0 };
    assert.throws(() => validateReplicaRecord(v, snapshot), /VM 'gold' ownership epoch -3 is not a valid epoch/);
    assert.doesNotThrow(() => validateReplicaRecord({ ...v, epoch: 4 }, snapshot));
  });
});

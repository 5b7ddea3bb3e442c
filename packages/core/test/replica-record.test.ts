import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  HOLE,
  InvalidArgumentError,
  MAX_TREE_HEIGHT,
  IdSource,
  nodeSlots,
  toHex,
  treeGeometry,
  validateReplicaRecord,
  type SnapshotRecord,
  type VmRecord,
} from '../src/index.js';

const ids = new IdSource();

const MiB = 1024 * 1024;
const ROOT = 'ab'.repeat(32);

function honest(): { vm: VmRecord; snapshot: SnapshotRecord } {
  const vmId = ids.next();
  const layout = { index: 0, size: 16 * MiB, blockSize: 64 * 1024, gridOffset: 0 };
  return {
    vm: { id: vmId, name: 'web-1', createdAtMs: 1_700_000_000_000, homeSite: 'siteA', hypervisorConfig: '', disks: [{ ...layout, root: toHex(HOLE) }] },
    snapshot: {
      id: ids.next(),
      vmId,
      createdAtMs: 1_700_000_000_001,
      label: 's1',
      consistency: 'crash',
      origin: 'manual',
      disks: [{ ...layout, root: ROOT }],
      dirtyBlocks: 3,
    },
  };
}

function refuses(mutate: (r: { vm: VmRecord; snapshot: SnapshotRecord }) => { vm: VmRecord; snapshot: SnapshotRecord }, pattern: RegExp): void {
  const r = mutate(honest());
  assert.throws(
    () => validateReplicaRecord(r.vm, r.snapshot),
    (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message) && e.message.length < 1000,
  );
}

describe('validateReplicaRecord', () => {
  test('an honest record passes', () => {
    const r = honest();
    validateReplicaRecord(r.vm, r.snapshot);
  });

  test('ids must be id-shaped: empty, path-like and foreign ids are refused', () => {
    for (const id of ['', 'x/../y', 'a'.repeat(26), `${ids.next()}x`]) {
      refuses((r) => ({ vm: { ...r.vm, id }, snapshot: { ...r.snapshot, vmId: id } }), /VM id .* is not a valid id/);
    }
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, id: '' } }), /snapshot id '' is not a valid id/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, vmId: ids.next() } }), /belongs to VM/);
    refuses((r) => ({ ...r, vm: { ...r.vm, clonedFrom: { vmId: '', vmName: 'gold', snapshotId: ids.next() } } }), /clone source VM id/);
  });

  test('names and labels follow the local rules; the message stays short for a huge name', () => {
    refuses((r) => ({ ...r, vm: { ...r.vm, name: '../../etc' } }), /invalid VM name '\.\.\/\.\.\/etc'/);
    refuses((r) => ({ ...r, vm: { ...r.vm, name: 'a'.repeat(10_000) } }), /invalid VM name/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, label: 'a/b@c' } }), /invalid snapshot label 'a\/b@c'/);
    refuses((r) => ({ ...r, vm: { ...r.vm, homeSite: '' } }), /home site/);
  });

  test('disk counts, layouts, roots and the VM/snapshot disk lists are checked', () => {
    refuses((r) => ({ vm: { ...r.vm, disks: [] }, snapshot: { ...r.snapshot, disks: [] } }), /has 0 vDisks; a VM has 1 to 64/);
    const d = honest().snapshot.disks[0];
    assert.ok(d);
    const many = Array.from({ length: 65 }, (_, index) => ({ ...d, index }));
    refuses((r) => ({ vm: { ...r.vm, disks: many }, snapshot: { ...r.snapshot, disks: many } }), /has 65 vDisks/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [{ ...d, blockSize: 1000 }] } }), /block size 1000 is invalid/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [{ ...d, size: 0 }] } }), /disk size 0 is invalid/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [{ ...d, index: 3 }] } }), /has index 3/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [{ ...d, root: 'zz' }] } }), /root 'zz' is not a 64-digit hex fingerprint/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [{ ...d, size: 1024 ** 4 }] } }), /layout differs from the VM's vDisk 0/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, disks: [d, { ...d, index: 1 }] } }), /has 2 vDisks but the VM has 1/);
  });

  test('times, counts and free text are bounded', () => {
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, createdAtMs: -1 } }), /creation time/);
    refuses((r) => ({ ...r, vm: { ...r.vm, createdAtMs: 1.5 } }), /creation time/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, dirtyBlocks: -4 } }), /dirty block count/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, origin: 'x'.repeat(5000) } }), /origin/);
    refuses((r) => ({ ...r, snapshot: { ...r.snapshot, consistency: 'bogus' as 'crash' } }), /consistency/);
    refuses((r) => ({ ...r, vm: { ...r.vm, hypervisorConfig: 'A'.repeat(2 * MiB) } }), /hypervisor config/);
  });
});

describe('tree geometry for peers', () => {
  test('nodeSlots gives the right edge its short count and MAX_TREE_HEIGHT bounds every disk', () => {
    const g = treeGeometry(1024 * 1024 + 5);
    assert.equal(g.height, 3);
    assert.equal(nodeSlots(g, 2, 0), 2);
    assert.equal(nodeSlots(g, 1, 1), 1);
    assert.equal(nodeSlots(g, 0, 1024), 5);
    assert.equal(nodeSlots(g, 0, 3), 1024);
    assert.equal(MAX_TREE_HEIGHT, 5);
  });
});

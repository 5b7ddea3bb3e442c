import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { protectionStatus, type ProtectionPolicy, type ReplicatedSnapshot } from '../src/index.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MINUTE = 60_000;
const HOURLY = { name: 'hourly', every: '1h', keep: 24 };

const copies = (entries: Record<string, ReplicatedSnapshot>): ReadonlyMap<string, ReplicatedSnapshot> => new Map(Object.entries(entries));
const copyAged = (id: string, ageMs: number): ReplicatedSnapshot => ({ snapshotId: id, snapshotCreatedAtMs: NOW - ageMs });

describe('protectionStatus', () => {
  test('an excluded VM, or one without schedules, is unprotected', () => {
    assert.deepEqual(protectionStatus(undefined, copies({}), NOW), { state: 'unprotected', targets: [] });
    assert.equal(protectionStatus({ schedules: [] }, copies({}), NOW).state, 'unprotected');
  });

  test('schedules and no replication: protected', () => {
    assert.deepEqual(protectionStatus({ schedules: [HOURLY] }, copies({}), NOW), { state: 'protected', targets: [] });
  });

  test('a copy younger than the RPO is protected; its age is measured from the snapshot', () => {
    const p: ProtectionPolicy = { schedules: [HOURLY], replication: [{ site: 'b', rpo: '2h' }] };
    assert.deepEqual(protectionStatus(p, copies({ b: copyAged('S1', 30 * MINUTE) }), NOW), {
      state: 'protected',
      targets: [{ site: 'b', rpoMs: 120 * MINUTE, ageMs: 30 * MINUTE, snapshotId: 'S1', late: false }],
    });
  });

  test('a copy older than the RPO, or none at all, is late; exactly at the RPO is not', () => {
    const p: ProtectionPolicy = {
      schedules: [HOURLY],
      replication: [
        { site: 'b', rpo: '2h' },
        { site: 'c', rpo: '1h' },
      ],
    };
    const s = protectionStatus(p, copies({ b: copyAged('S1', 121 * MINUTE) }), NOW);
    assert.equal(s.state, 'late');
    assert.deepEqual(s.targets, [
      { site: 'b', rpoMs: 120 * MINUTE, ageMs: 121 * MINUTE, snapshotId: 'S1', late: true },
      { site: 'c', rpoMs: 60 * MINUTE, ageMs: null, snapshotId: null, late: true },
    ]);
    assert.equal(protectionStatus(p, copies({ b: copyAged('S1', 120 * MINUTE), c: copyAged('S2', 60 * MINUTE) }), NOW).state, 'protected');
  });

  test('one late target of several makes the VM late', () => {
    const p: ProtectionPolicy = {
      schedules: [HOURLY],
      replication: [
        { site: 'b', rpo: '2h' },
        { site: 'c', rpo: '1h' },
      ],
    };
    const s = protectionStatus(p, copies({ b: copyAged('S1', MINUTE), c: copyAged('S2', 61 * MINUTE) }), NOW);
    assert.equal(s.state, 'late');
    assert.deepEqual(
      s.targets.map((t) => t.late),
      [false, true],
    );
  });

  test('a target without an RPO is never late; with a copy the VM is protected', () => {
    const p: ProtectionPolicy = { schedules: [HOURLY], replication: [{ site: 'b' }] };
    assert.deepEqual(protectionStatus(p, copies({ b: copyAged('S1', 1000 * 60 * MINUTE) }), NOW), {
      state: 'protected',
      targets: [{ site: 'b', rpoMs: null, ageMs: 1000 * 60 * MINUTE, snapshotId: 'S1', late: false }],
    });
  });

  test('a policy that requires an off-site copy and no target holds one: unprotected, whatever the RPOs', () => {
    const noRpo: ProtectionPolicy = { schedules: [HOURLY], replication: [{ site: 'b' }] };
    assert.deepEqual(protectionStatus(noRpo, copies({}), NOW), {
      state: 'unprotected',
      targets: [{ site: 'b', rpoMs: null, ageMs: null, snapshotId: null, late: false }],
    });
    const withRpo: ProtectionPolicy = { schedules: [HOURLY], replication: [{ site: 'b', rpo: '1h' }, { site: 'c' }] };
    assert.equal(protectionStatus(withRpo, copies({}), NOW).state, 'unprotected');
    // One complete copy somewhere is off-site protection; a late one makes the VM late.
    assert.equal(protectionStatus(withRpo, copies({ c: copyAged('S1', MINUTE) }), NOW).state, 'late');
    assert.equal(protectionStatus(withRpo, copies({ b: copyAged('S1', MINUTE) }), NOW).state, 'protected');
  });

  test('an unprotected VM still reports its targets', () => {
    const p: ProtectionPolicy = { schedules: [], replication: [{ site: 'b', rpo: '1h' }] };
    const s = protectionStatus(p, copies({}), NOW);
    assert.equal(s.state, 'unprotected');
    assert.equal(s.targets[0]?.late, true);
  });
});

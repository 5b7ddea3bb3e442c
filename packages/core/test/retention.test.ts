import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { expiredSnapshots, InvalidArgumentError, parsePolicy, scheduleOfOrigin, simulateRetention, verifyJobId, type ProtectionPolicy } from '../src/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-06-01T12:00:00Z');

/** Snapshots of `schedule`, `count` of them, one `stepMs` apart, the newest at NOW - stepMs. */
function series(schedule: string, count: number, stepMs: number): { id: string; createdAtMs: number; origin: string }[] {
  return Array.from({ length: count }, (_, i) => {
    const createdAtMs = NOW - (count - i) * stepMs;
    return { id: `${schedule}-${i}`, createdAtMs, origin: `schedule:${schedule}@${createdAtMs}` };
  });
}

describe('retention (one implementation for the node and the dry run)', () => {
  test('keep-N deletes the oldest beyond N, per schedule', () => {
    const snaps = [...series('hourly', 5, HOUR), ...series('daily', 3, DAY)].sort((a, b) => a.createdAtMs - b.createdAtMs);
    assert.deepEqual(
      expiredSnapshots(snaps, { schedule: 'hourly', keep: 2 }, NOW).map((s) => s.id),
      ['hourly-0', 'hourly-1', 'hourly-2'],
    );
    assert.deepEqual(expiredSnapshots(snaps, { schedule: 'daily', keep: 7 }, NOW), []);
  });

  test('maxAge deletes older snapshots but never the schedule newest', () => {
    const snaps = series('weekly', 3, 10 * DAY);
    assert.deepEqual(
      expiredSnapshots(snaps, { schedule: 'weekly', keep: 10, maxAgeMs: 15 * DAY }, NOW).map((s) => s.id),
      ['weekly-0', 'weekly-1'],
    );
    assert.deepEqual(
      expiredSnapshots(series('weekly', 1, 30 * DAY), { schedule: 'weekly', keep: 10, maxAgeMs: DAY }, NOW),
      [],
      'the only snapshot stays however old',
    );
  });

  test('the dry run agrees with expiredSnapshots and says why for each snapshot', () => {
    const manual = { id: 'm', createdAtMs: NOW - 100 * DAY, origin: 'manual' };
    const gone = { id: 'old-sched', createdAtMs: NOW - 50 * DAY, origin: `schedule:retired@${NOW - 50 * DAY}` };
    const hourly = series('hourly', 4, HOUR);
    const snaps = [manual, gone, ...hourly];
    const policy: ProtectionPolicy = { schedules: [{ name: 'hourly', every: '1h', keep: 2 }] };
    const plan = simulateRetention(snaps, policy, NOW);
    const deleted = plan.filter((d) => d.action === 'delete').map((d) => d.snapshot.id);
    assert.deepEqual(
      deleted,
      expiredSnapshots(snaps, { schedule: 'hourly', keep: 2 }, NOW).map((s) => s.id),
    );
    assert.deepEqual(deleted, ['hourly-0', 'hourly-1']);
    const reasonOf = (id: string): string => plan.find((d) => d.snapshot.id === id)?.reason ?? '';
    assert.match(reasonOf('m'), /not from a schedule \(manual\)/);
    assert.match(reasonOf('old-sched'), /schedule 'retired' is not in the policy/);
    assert.match(reasonOf('hourly-0'), /beyond keep 2 \(4th newest\)/);
    assert.match(reasonOf('hourly-3'), /1st newest of keep 2/);
  });

  test('a protected snapshot (a replication base) is kept and says both reasons', () => {
    const snaps = series('hourly', 3, HOUR);
    const plan = simulateRetention(
      snaps,
      { schedules: [{ name: 'hourly', every: '1h', keep: 1 }] },
      NOW,
      new Map([['hourly-0', 'base of replication to siteB']]),
    );
    assert.deepEqual(
      plan.map((d) => d.action),
      ['keep', 'delete', 'keep'],
    );
    assert.match(plan[0]?.reason ?? '', /base of replication to siteB \(retention would delete it: beyond keep 1/);
  });

  test('an excluded VM (no policy) loses nothing', () => {
    const plan = simulateRetention(series('hourly', 3, HOUR), undefined, NOW);
    assert.ok(plan.every((d) => d.action === 'keep' && /excluded/.test(d.reason)));
  });

  test('scheduleOfOrigin reads schedule:NAME@SLOT only', () => {
    assert.equal(scheduleOfOrigin('schedule:daily-1.a@1700000000000'), 'daily-1.a');
    assert.equal(scheduleOfOrigin('manual'), undefined);
    assert.equal(scheduleOfOrigin('replica:siteA/x'), undefined);
  });
});

describe('verify schedules in the policy', () => {
  test('a verify schedule is accepted with cron or every, and its job id names site and slot', () => {
    const p = parsePolicy({ schedules: [{ name: 'd', cron: '0 1 * * *', keep: 1 }], verify: { every: '1d' } });
    assert.deepEqual(p.verify, { every: '1d' });
    assert.equal(verifyJobId('siteA', 86_400_000), 'verify.siteA.86400000');
  });

  test('a bad verify schedule is refused naming each problem', () => {
    const problems = (doc: unknown): string => {
      try {
        parsePolicy(doc);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError);
        return e.message;
      }
      return assert.fail('accepted');
    };
    const base = { schedules: [{ name: 'd', cron: '0 1 * * *', keep: 1 }] };
    assert.match(problems({ ...base, verify: {} }), /verify: give exactly one of cron or every/);
    assert.match(problems({ ...base, verify: { every: 'daily' } }), /verify: every: 'daily' is not a duration/);
    assert.match(problems({ ...base, verify: { cron: 'not cron' } }), /verify: bad cron expression 'not cron'/);
    assert.match(problems({ ...base, verify: { every: '1d', keep: 3 } }), /verify\.keep: unknown key/);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_POLICY,
  effectivePolicy,
  InvalidArgumentError,
  latestSlot,
  nextSlot,
  parseDuration,
  parseOverride,
  parsePolicy,
  parseStoredOverride,
  parseStoredPolicy,
  slotJobId,
  validateOverride,
  validatePolicy,
  type ProtectionPolicy,
  type Schedule,
} from '../src/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string => (ms === undefined ? 'undefined' : new Date(ms).toISOString());

/** Wall-clock time of `ms` in `timeZone` as 'YYYY-MM-DD HH:mm'. */
function wallClock(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '??';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
}

/** Every slot of `s` in [from, to), walking with nextSlot. */
function slotsBetween(s: Schedule, from: number, to: number, timeZone?: string): number[] {
  const out: number[] = [];
  let t = latestSlot(s, from, timeZone);
  if (t === undefined || t < from) t = nextSlot(s, from - 1, timeZone);
  for (; t !== undefined && t < to; t = nextSlot(s, t, timeZone)) {
    out.push(t);
    assert.ok(out.length < 10_000, 'runaway slot walk');
  }
  return out;
}

function invalidMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    return e.message;
  }
  assert.fail('expected the policy to be rejected');
}

describe('parseDuration', () => {
  test('accepts s/m/h/d/w and rejects everything else', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('15m'), 15 * 60_000);
    assert.equal(parseDuration('1h'), HOUR);
    assert.equal(parseDuration('7d'), 7 * DAY);
    assert.equal(parseDuration('2w'), 14 * DAY);
    assert.equal(parseDuration(' 5m '), 5 * 60_000);
    for (const bad of ['0s', '', '5', '1.5h', '-1h', '1y', 'h', '1 h', 'soon']) {
      assert.throws(() => parseDuration(bad), InvalidArgumentError, bad);
    }
  });
});

describe('cron slots in time zones', () => {
  const daily: Schedule = { name: 'daily', cron: '30 2 * * *', keep: 7 };
  const berlin = 'Europe/Berlin';

  test('a daily 02:30 schedule fires at 02:30 local time, in winter and in summer', () => {
    // Winter (CET, UTC+1) and summer (CEST, UTC+2).
    assert.equal(iso(nextSlot(daily, at('2026-01-15T12:00:00Z'), berlin)), '2026-01-16T01:30:00.000Z');
    assert.equal(iso(nextSlot(daily, at('2026-07-15T12:00:00Z'), berlin)), '2026-07-16T00:30:00.000Z');
    // Default zone is UTC.
    assert.equal(iso(nextSlot(daily, at('2026-07-15T12:00:00Z'))), '2026-07-16T02:30:00.000Z');
    assert.equal(iso(latestSlot(daily, at('2026-07-15T12:00:00Z'))), '2026-07-15T02:30:00.000Z');
    // New York is a different instant for the same wall clock.
    assert.equal(iso(nextSlot(daily, at('2026-07-15T12:00:00Z'), 'America/New_York')), '2026-07-16T06:30:00.000Z');
  });

  test('spring forward (Europe/Berlin 2026-03-29, 02:00→03:00): 02:30 does not exist, the day still gets exactly one slot, right after the gap', () => {
    const slots = slotsBetween(daily, at('2026-03-27T00:00:00Z'), at('2026-03-31T00:00:00Z'), berlin);
    const days = slots.map((s) => wallClock(s, berlin).slice(0, 10));
    assert.deepEqual(days, ['2026-03-27', '2026-03-28', '2026-03-29', '2026-03-30'], slots.map(iso).join(', '));
    assert.equal(iso(slots[1]), '2026-03-28T01:30:00.000Z'); // 02:30 CET
    assert.equal(iso(slots[3]), '2026-03-30T00:30:00.000Z'); // 02:30 CEST
    const dstDay = slots[2] as number;
    // The clocks jump at 01:00 UTC (02:00 CET → 03:00 CEST); the skipped 02:30 runs in the first
    // half hour after the jump (03:00–03:30 CEST), not an hour late and not before the jump.
    assert.ok(dstDay >= at('2026-03-29T01:00:00Z') && dstDay <= at('2026-03-29T01:30:00Z'), iso(dstDay));
    // latestSlot agrees with nextSlot around the gap.
    assert.equal(latestSlot(daily, at('2026-03-29T00:59:59Z'), berlin), slots[1]);
    assert.equal(latestSlot(daily, dstDay, berlin), dstDay);
    assert.equal(latestSlot(daily, dstDay - 1, berlin), slots[1]);
    assert.equal(latestSlot(daily, at('2026-03-29T20:00:00Z'), berlin), dstDay);
  });

  test('fall back (Europe/Berlin 2026-10-25, 03:00→02:00): 02:30 happens twice, the schedule fires once', () => {
    const slots = slotsBetween(daily, at('2026-10-23T00:00:00Z'), at('2026-10-27T00:00:00Z'), berlin);
    const local = slots.map((s) => wallClock(s, berlin));
    assert.deepEqual(local, ['2026-10-23 02:30', '2026-10-24 02:30', '2026-10-25 02:30', '2026-10-26 02:30'], slots.map(iso).join(', '));
    assert.equal(iso(slots[1]), '2026-10-24T00:30:00.000Z'); // CEST
    assert.equal(iso(slots[3]), '2026-10-26T01:30:00.000Z'); // CET
    const dstDay = slots[2] as number;
    // Either 02:30 CEST (00:30Z) or 02:30 CET (01:30Z), but only one of them.
    assert.ok(dstDay === at('2026-10-25T00:30:00Z') || dstDay === at('2026-10-25T01:30:00Z'), iso(dstDay));
    // Neither the first nor the second 02:30 produces another slot.
    assert.equal(latestSlot(daily, at('2026-10-25T01:45:00Z'), berlin), dstDay);
    assert.equal(latestSlot(daily, at('2026-10-25T23:00:00Z'), berlin), dstDay);
    assert.equal(nextSlot(daily, dstDay, berlin), slots[3]);
  });

  test('an hourly schedule over both transitions has one slot per real hour', () => {
    const hourly: Schedule = { name: 'hourly', cron: '0 * * * *', keep: 24 };
    // Spring: the local day has 23 hours, so 23 slots.
    const spring = slotsBetween(hourly, at('2026-03-28T23:00:00Z'), at('2026-03-29T22:00:00Z'), berlin);
    assert.equal(spring.length, 23);
    // Fall: the local day has 25 hours, so 25 slots (both 02:00s are real, distinct hours).
    const fall = slotsBetween(hourly, at('2026-10-24T22:00:00Z'), at('2026-10-25T23:00:00Z'), berlin);
    assert.equal(fall.length, 25);
    for (const list of [spring, fall]) {
      assert.equal(new Set(list).size, list.length);
      for (let i = 1; i < list.length; i++) assert.equal((list[i] as number) - (list[i - 1] as number), HOUR, iso(list[i]));
    }
  });

  test('6-field cron expressions (seconds) work', () => {
    const s: Schedule = { name: 'fast', cron: '*/15 * * * * *', keep: 1 };
    assert.equal(iso(latestSlot(s, at('2026-05-01T10:00:44Z'))), '2026-05-01T10:00:30.000Z');
    assert.equal(iso(nextSlot(s, at('2026-05-01T10:00:44Z'))), '2026-05-01T10:00:45.000Z');
  });
});

describe('every slots', () => {
  const s: Schedule = { name: 'quarter', every: '15m', keep: 4 };

  test('slots are multiples of the interval since the epoch', () => {
    assert.equal(iso(latestSlot(s, at('2026-05-01T10:07:30Z'))), '2026-05-01T10:00:00.000Z');
    assert.equal(iso(nextSlot(s, at('2026-05-01T10:07:30Z'))), '2026-05-01T10:15:00.000Z');
    // At a slot instant: latestSlot is that slot, nextSlot is strictly after it.
    assert.equal(iso(latestSlot(s, at('2026-05-01T10:15:00Z'))), '2026-05-01T10:15:00.000Z');
    assert.equal(iso(nextSlot(s, at('2026-05-01T10:15:00Z'))), '2026-05-01T10:30:00.000Z');
    assert.equal(iso(latestSlot(s, at('2026-05-01T10:14:59.999Z'))), '2026-05-01T10:00:00.000Z');
  });

  test('consecutive slots are exactly one interval apart, also across a DST change in a time zone', () => {
    const slots = slotsBetween({ name: 'h', every: '1h', keep: 1 }, at('2026-03-28T22:00:00Z'), at('2026-03-29T06:00:00Z'), 'Europe/Berlin');
    assert.equal(slots.length, 8);
    for (let i = 1; i < slots.length; i++) assert.equal((slots[i] as number) - (slots[i - 1] as number), HOUR);
  });

  test('1s slots are whole seconds', () => {
    const t = at('2026-05-01T10:00:00.750Z');
    assert.equal(latestSlot({ name: 's', every: '1s', keep: 1 }, t), at('2026-05-01T10:00:00Z'));
    assert.equal(nextSlot({ name: 's', every: '1s', keep: 1 }, t), at('2026-05-01T10:00:01Z'));
  });
});

describe('catch-up semantics', () => {
  test('after a long gap the latest slot is the most recent one, not the first missed one', () => {
    const daily = DEFAULT_POLICY.schedules[0] as Schedule; // 01:00 UTC
    const lastRun = at('2026-01-01T01:00:00Z');
    const now = at('2026-01-10T14:00:00Z');
    assert.equal(iso(latestSlot(daily, now)), '2026-01-10T01:00:00.000Z');
    // Nine slots were missed in between; only the latest one is due.
    assert.equal(slotsBetween(daily, lastRun + 1, now).length, 9);
    const every: Schedule = { name: 'e', every: '5m', keep: 1 };
    assert.equal(iso(latestSlot(every, at('2026-01-10T14:03:00Z'))), '2026-01-10T14:00:00.000Z');
  });

  test('a cron schedule with no slot before `now` has no latest slot', () => {
    // 29 February: the latest is the last leap day.
    const leap: Schedule = { name: 'leap', cron: '0 0 29 2 *', keep: 1 };
    assert.equal(iso(latestSlot(leap, at('2027-01-01T00:00:00Z'))), '2024-02-29T00:00:00.000Z');
    assert.equal(iso(nextSlot(leap, at('2026-01-01T00:00:00Z'))), '2028-02-29T00:00:00.000Z');
  });

  test('slotJobId names (VM, schedule, slot) uniquely', () => {
    assert.equal(slotJobId('vm1', 'daily', 1000), 'snap.vm1.daily.1000');
    const ids = new Set([slotJobId('vm1', 'daily', 1000), slotJobId('vm1', 'daily', 2000), slotJobId('vm2', 'daily', 1000), slotJobId('vm1', 'hourly', 1000)]);
    assert.equal(ids.size, 4);
  });
});

describe('effectivePolicy', () => {
  const base: ProtectionPolicy = {
    timeZone: 'Europe/Berlin',
    schedules: [
      { name: 'hourly', cron: '0 * * * *', keep: 24, consistency: 'crash' },
      { name: 'daily', cron: '30 2 * * *', keep: 7, consistency: 'crash' },
    ],
    replication: [{ site: 'dr', rpo: '1h' }],
  };

  test('no override: the default itself', () => {
    assert.deepEqual(effectivePolicy(base), base);
    assert.deepEqual(effectivePolicy(base, {}), base);
  });

  test('exclude: no policy at all, whatever else the override says', () => {
    assert.equal(effectivePolicy(base, { exclude: true }), undefined);
    assert.equal(effectivePolicy(base, { exclude: true, mode: 'add', schedules: [{ name: 'x', every: '1h', keep: 1 }] }), undefined);
    assert.notEqual(effectivePolicy(base, { exclude: false }), undefined);
  });

  test('replace: only the override schedules', () => {
    const p = effectivePolicy(base, { mode: 'replace', schedules: [{ name: 'weekly', cron: '0 3 * * 0', keep: 4 }] });
    assert.deepEqual(
      p?.schedules.map((s) => s.name),
      ['weekly'],
    );
    assert.equal(p?.timeZone, 'Europe/Berlin');
    assert.deepEqual(p?.replication, base.replication);
  });

  test('add (the default mode): default schedules plus the override, a same-named one replaced', () => {
    const p = effectivePolicy(base, {
      schedules: [
        { name: 'weekly', cron: '0 3 * * 0', keep: 4 },
        { name: 'daily', cron: '0 4 * * *', keep: 30 },
      ],
    });
    assert.deepEqual(
      p?.schedules.map((s) => `${s.name}:${s.keep}`),
      ['hourly:24', 'weekly:4', 'daily:30'],
    );
    assert.equal(p?.schedules.find((s) => s.name === 'daily')?.cron, '0 4 * * *');
    const explicit = effectivePolicy(base, { mode: 'add', schedules: [{ name: 'weekly', cron: '0 3 * * 0', keep: 4 }] });
    assert.deepEqual(
      explicit?.schedules.map((s) => s.name),
      ['hourly', 'daily', 'weekly'],
    );
  });

  test('keep overrides change only the named schedules', () => {
    const p = effectivePolicy(base, { keep: { daily: 90 } });
    assert.equal(p?.schedules.find((s) => s.name === 'daily')?.keep, 90);
    assert.equal(p?.schedules.find((s) => s.name === 'hourly')?.keep, 24);
    // The default is not modified.
    assert.equal(base.schedules[1]?.keep, 7);
    // Also applies to schedules the override adds.
    const q = effectivePolicy(base, { mode: 'replace', schedules: [{ name: 'weekly', cron: '0 3 * * 0', keep: 4 }], keep: { weekly: 12, nonexistent: 3 } });
    assert.deepEqual(
      q?.schedules.map((s) => `${s.name}:${s.keep}`),
      ['weekly:12'],
    );
  });

  test('consistency override applies to every schedule; replication override replaces the targets', () => {
    const p = effectivePolicy(base, { consistency: 'vm', replication: [{ site: 'far', keep: 3 }] });
    assert.deepEqual(
      p?.schedules.map((s) => s.consistency),
      ['vm', 'vm'],
    );
    assert.deepEqual(p?.replication, [{ site: 'far', keep: 3 }]);
    assert.equal(base.schedules[0]?.consistency, 'crash');
  });

  test("symmetric pair: a target equal to the VM's own site is dropped, the others stay", () => {
    const pair: ProtectionPolicy = {
      schedules: base.schedules,
      replication: [
        { site: 'siteA', rpo: '1h' },
        { site: 'siteB', rpo: '1h' },
      ],
    };
    assert.deepEqual(effectivePolicy(pair, undefined, 'siteB')?.replication, [{ site: 'siteA', rpo: '1h' }]);
    assert.deepEqual(effectivePolicy(pair, undefined, 'siteA')?.replication, [{ site: 'siteB', rpo: '1h' }]);
    // An override's targets too; the policy is not modified; without a site nothing is dropped.
    assert.deepEqual(effectivePolicy(pair, { replication: [{ site: 'siteB' }] }, 'siteB')?.replication, []);
    assert.equal(pair.replication?.length, 2);
    assert.deepEqual(effectivePolicy(pair)?.replication, pair.replication);
  });
});

describe('validatePolicy', () => {
  test('a good policy is returned as is', () => {
    const p: ProtectionPolicy = {
      timeZone: 'Europe/Berlin',
      schedules: [
        { name: 'daily', cron: '30 2 * * *', keep: 7, maxAge: '30d', consistency: 'vm', requireVmConsistency: true },
        { name: 'often', every: '15m', keep: 4 },
      ],
      replication: [{ site: 'dr', schedules: ['daily'], keep: 14, rpo: '1d' }],
    };
    assert.equal(validatePolicy(p, ['dr', 'main']), p);
    assert.equal(validatePolicy(DEFAULT_POLICY), DEFAULT_POLICY);
    // Without a list of known sites, any site is accepted.
    assert.equal(validatePolicy(p), p);
  });

  test('every problem is listed at once', () => {
    const message = invalidMessage(() =>
      validatePolicy(
        {
          timeZone: 'Mars/Olympus_Mons',
          schedules: [
            { name: 'badcron', cron: '61 * * * *', keep: 1 },
            { name: 'nokeep', every: '1h', keep: 0 },
            { name: 'twice', every: '1h', keep: 1 },
            { name: 'twice', every: '2h', keep: 1 },
            { name: 'both', cron: '0 1 * * *', every: '1h', keep: 1 },
            { name: 'badevery', every: 'soon', keep: 1 },
          ],
          replication: [{ site: 'nowhere' }, { site: 'dr', keep: 0 }],
        },
        ['dr'],
      ),
    );
    const expected = [
      /unknown time zone 'Mars\/Olympus_Mons'/,
      /'badcron': bad cron expression '61 \* \* \* \*'/,
      /'nokeep': keep must be a whole number ≥ 1 \(got 0\)/,
      /schedule 'twice' appears twice/,
      /'both': give exactly one of cron or every/,
      /'badevery': every: 'soon' is not a duration/,
      /unknown site 'nowhere' \(known: dr\)/,
      /replication target dr: keep must be ≥ 1/,
    ];
    for (const re of expected) assert.match(message, re);
    assert.ok(message.split('\n').length >= expected.length + 1, message);
  });

  test('single problems', () => {
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', cron: 'every day', keep: 1 }] })),
      /bad cron expression 'every day'/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', cron: '* * *', keep: 1 }] })),
      /bad cron expression/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: -3 }] })),
      /keep must be a whole number ≥ 1/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: 2.5 }] })),
      /keep must be a whole number ≥ 1/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: 1 }], replication: [{ site: 'mars' }] }, ['a', 'b'])),
      /unknown site 'mars' \(known: a, b\)/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: 1 }], replication: [{ site: 'mars' }] }, [])),
      /known: none/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ timeZone: 'Europe/Berlinn', schedules: [{ name: 'x', every: '1h', keep: 1 }] })),
      /unknown time zone 'Europe\/Berlinn'/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', keep: 1 }] })),
      /give exactly one of cron or every/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: '', every: '1h', keep: 1 }] })),
      /schedule name '' must be/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: 1, maxAge: 'forever' }] })),
      /maxAge: 'forever' is not a duration/,
    );
    assert.match(
      invalidMessage(() => validatePolicy({ schedules: [{ name: 'x', every: '1h', keep: 1 }], replication: [{ site: 'dr', rpo: 'asap' }] })),
      /rpo: 'asap'/,
    );
    const badConsistency = JSON.parse('{"schedules":[{"name":"x","every":"1h","keep":1,"consistency":"app"}]}') as ProtectionPolicy;
    assert.match(
      invalidMessage(() => validatePolicy(badConsistency)),
      /consistency is crash or vm/,
    );
  });

  test('validateOverride checks its schedules, keep counts, mode and targets', () => {
    assert.deepEqual(validateOverride({ exclude: true }), { exclude: true });
    const bad = JSON.parse(
      '{"mode":"merge","keep":{"daily":0},"schedules":[{"name":"w","cron":"0 0 * *","keep":1}],"replication":[{"site":"x"}]}',
    ) as Parameters<typeof validateOverride>[0];
    const message = invalidMessage(() => validateOverride(bad, ['dr']));
    assert.match(message, /mode is replace or add/);
    assert.match(message, /keep for 'daily' must be ≥ 1/);
    assert.match(message, /'w': bad cron expression/);
    assert.match(message, /unknown site 'x'/);
  });
});

describe('parsePolicy and parseOverride (strict, every bad key named with its path)', () => {
  const problemsOf = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      return e.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    }
    return assert.fail('accepted');
  };

  test('a good policy and override come back as given', () => {
    const p = { schedules: [{ name: 'hourly', cron: '0 * * * *', keep: 24 }], replication: [{ site: 'b', rpo: '2h', keep: 48 }], timeZone: 'Europe/Berlin' };
    assert.deepEqual(parsePolicy(p, ['b']), p);
    const o = { mode: 'add', schedules: [{ name: 'fast', every: '5m', keep: 12 }], keep: { hourly: 3 } };
    assert.deepEqual(parseOverride(o), o);
    assert.deepEqual(parseStoredOverride('{"exclude":true}'), { exclude: true });
  });

  test("an unknown key ('retension') is refused, naming its path; every bad key at once", () => {
    assert.deepEqual(
      problemsOf(() => parsePolicy({ schedules: [{ name: 'daily', cron: '0 1 * * *', keep: 7, retension: 30 }] })),
      ['schedules[0].retension: unknown key'],
    );
    const problems = problemsOf(() =>
      parsePolicy({ schedules: [{ name: 'daily', cron: '0 1 * * *', keep: '7' }], replication: [{ site: 'b', rpoo: '1h' }], timezone: 'UTC' }),
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('schedules[0].keep: ')));
    assert.ok(problems.includes('replication[0].rpoo: unknown key'));
    assert.ok(problems.includes('timezone: unknown key'));
    assert.deepEqual(
      problemsOf(() => parseOverride({ exclude: true, exlude: true })),
      ['exlude: unknown key'],
    );
    assert.ok(problemsOf(() => parsePolicy({})).some((p) => p.startsWith('schedules: ')));
  });

  test('the meaning is checked after the shape (bad cron, keep < 1, unknown site), and stored text that is not JSON is refused', () => {
    assert.throws(() => parsePolicy({ schedules: [{ name: 'x', cron: 'nope', keep: 0 }] }), /bad cron expression[\s\S]*keep must be/);
    assert.throws(() => parseOverride({ replication: [{ site: 'z' }] }, ['b']), /unknown site 'z'/);
    assert.throws(
      () => parseStoredPolicy('{"schedules": ['),
      (e: unknown) => e instanceof InvalidArgumentError && /not JSON/.test(e.message),
    );
  });
});

/** Unit tests: the shared token bucket (on a manual clock) and the link rate calendar. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, parseCalendar, parseRate, rateAt, transferSeconds, UNLIMITED } from '@vmferry/core';
import { ManualClock } from '@vmferry/testkit';
import { TokenBucket } from '../src/index.js';

const MB = 1e6;

async function drain(bucket: TokenBucket, total: number, piece: number): Promise<void> {
  for (let done = 0; done < total; done += piece) await bucket.take(Math.min(piece, total - done));
}

describe('TokenBucket', () => {
  test('4 MB/s shared by 4 concurrent takers moving 8 MB in total takes 1.75 s', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(4 * MB, 0.25, clock);
    await clock.runUntil(Promise.all([0, 1, 2, 3].map(() => drain(bucket, 2 * MB, 64 * 1024))));
    // (8 MB - 1 MB burst) / 4 MB/s = 1.75 s; a taker may run ahead by one message.
    const s = clock.nowMs() / 1000;
    assert.ok(s >= 1.74 && s <= 1.8, `took ${s.toFixed(3)} s of clock time`);
  });

  test('no taker passes more than the rate allows at any moment', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MB, 0.25, clock);
    let passed = 0;
    const samples: { at: number; bytes: number }[] = [];
    const taker = (async () => {
      for (let i = 0; i < 64; i++) {
        await bucket.take(64 * 1024);
        passed += 64 * 1024;
        samples.push({ at: clock.nowMs(), bytes: passed });
      }
    })();
    await clock.runUntil(taker);
    // By time t, at most burst + rate·t + one message may have passed.
    for (const { at, bytes } of samples) assert.ok(bytes <= 0.25 * MB + (at / 1000) * MB + 64 * 1024, `${bytes} bytes by ${at} ms`);
  });

  test('setRate mid-transfer takes effect within one recheck (100 ms)', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MB, 0.25, clock);
    let finishedAt: number | undefined;
    const done = drain(bucket, 4 * MB, 64 * 1024).then(() => {
      finishedAt = clock.nowMs();
    });
    await clock.advance(500);
    assert.equal(finishedAt, undefined, 'at 1 MB/s the transfer takes ~3.75 s');
    bucket.setRate(40 * MB);
    assert.equal(bucket.bytesPerSecond, 40 * MB);
    await clock.runUntil(done);
    // At 40 MB/s the remaining ~3.2 MB take ~80 ms, plus at most one 100 ms recheck.
    assert.ok(finishedAt !== undefined && finishedAt - 500 <= 200, `finished ${String((finishedAt ?? 0) - 500)} ms after the rate change`);
  });

  test('setRate(unlimited) releases a taker deep in debt within one recheck', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MB, 0.25, clock);
    const p = bucket.take(20 * MB).then(() => clock.nowMs());
    await clock.advance(300);
    bucket.setRate(UNLIMITED);
    const end = await clock.runUntil(p);
    assert.ok(end - 300 <= 100, `released ${String(end - 300)} ms after the change`);
  });

  test('an unlimited bucket never waits', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(UNLIMITED, 0.25, clock);
    for (let i = 0; i < 2000; i++) await bucket.take(1e12);
    assert.equal(clock.sleeping, 0);
    assert.equal(clock.nowMs(), 0);
  });

  test('an aborted take rejects and stops waiting', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * MB, 0.25, clock);
    const ac = new AbortController();
    const p = bucket.take(50 * MB, ac.signal);
    await clock.advance(50);
    ac.abort();
    await assert.rejects(p);
    assert.equal(clock.sleeping, 0, 'the aborted taker left no timer behind');
  });
});

describe('rates and calendars', () => {
  test('parseRate units: bits, bytes, binary prefixes, unlimited', () => {
    assert.equal(parseRate('50Mbit'), 6.25e6);
    assert.equal(parseRate('400Mbit/s'), 5e7);
    assert.equal(parseRate('400Mbps'), 5e7);
    assert.equal(parseRate('1Gbit'), 1.25e8);
    assert.equal(parseRate('10MB/s'), 1e7);
    assert.equal(parseRate('10MBps'), 1e7);
    assert.equal(parseRate('512KB/s'), 512e3);
    assert.equal(parseRate('2MiB/s'), 2 * 1024 * 1024);
    assert.equal(parseRate(' 1.5 Mbit '), 187500);
    assert.equal(parseRate('unlimited'), UNLIMITED);
    // Lower-case b counts bits (documented in rate.ts): 80 Mb/s is 10 MB/s, not 80 MB/s.
    assert.equal(parseRate('80Mb/s'), 1e7);
  });

  test('bad rates throw InvalidArgumentError', () => {
    for (const bad of ['', 'fast', '0Mbit', '-5Mbit', '10M', '10 parsecs', 'Mbit', '10Xbit', '1e3Mbit']) {
      assert.throws(() => parseRate(bad), InvalidArgumentError, `'${bad}'`);
    }
  });

  const office = parseCalendar('Mon-Fri 08:00-18:00 50Mbit; * 400Mbit');
  const wed = (hhmm: string, day = '2026-11-25'): Date => new Date(`${day}T${hhmm}:00Z`); // a Wednesday

  test('weekday window vs otherwise', () => {
    assert.equal(rateAt(office, wed('10:00')), 6.25e6);
    assert.equal(rateAt(office, wed('08:00')), 6.25e6, 'window start is inclusive');
    assert.equal(rateAt(office, wed('18:00')), 5e7, 'window end is exclusive');
    assert.equal(rateAt(office, wed('07:59')), 5e7);
    assert.equal(rateAt(office, new Date('2026-11-28T10:00:00Z')), 5e7, 'Saturday');
    assert.equal(rateAt(office, new Date('2026-11-29T10:00:00Z')), 5e7, 'Sunday');
    assert.equal(rateAt(parseCalendar(''), wed('10:00')), UNLIMITED);
    assert.equal(rateAt(parseCalendar('Mon-Fri 08:00-18:00 50Mbit'), new Date('2026-11-28T10:00:00Z')), UNLIMITED, 'no * means unlimited otherwise');
  });

  test('windows crossing midnight', () => {
    const night = parseCalendar('* 22:00-06:00 1Gbit; * 100Mbit');
    assert.equal(rateAt(night, wed('23:00')), 1.25e8);
    assert.equal(rateAt(night, wed('03:00')), 1.25e8);
    assert.equal(rateAt(night, wed('00:00')), 1.25e8);
    assert.equal(rateAt(night, wed('06:00')), 1.25e7);
    assert.equal(rateAt(night, wed('12:00')), 1.25e7);
    // A window crossing midnight belongs to the day it started on.
    const friNight = parseCalendar('Fri 22:00-06:00 1Gbit');
    assert.equal(rateAt(friNight, new Date('2026-11-27T23:00:00Z')), 1.25e8, 'Friday 23:00');
    assert.equal(rateAt(friNight, new Date('2026-11-28T03:00:00Z')), 1.25e8, 'Saturday 03:00 (Friday night)');
    assert.equal(rateAt(friNight, new Date('2026-11-27T03:00:00Z')), UNLIMITED, 'Friday 03:00 is Thursday night');
    // Day ranges wrap around the week.
    const weekend = parseCalendar('Fri-Mon 00:00-24:00 8Mbit');
    assert.equal(rateAt(weekend, new Date('2026-11-30T12:00:00Z')), 1e6, 'Monday');
    assert.equal(rateAt(weekend, new Date('2026-12-01T12:00:00Z')), UNLIMITED, 'Tuesday');
  });

  test('time zones, DST included', () => {
    // 14:00 UTC on a Wednesday in November is 09:00 in New York (EST, UTC-5).
    assert.equal(rateAt(office, wed('14:00'), 'America/New_York'), 6.25e6);
    assert.equal(rateAt(office, wed('10:00'), 'America/New_York'), 5e7, '05:00 in New York');
    assert.equal(rateAt(office, wed('22:00'), 'America/New_York'), 6.25e6, '17:00 in New York');
    assert.equal(rateAt(office, wed('22:00'), 'UTC'), 5e7);
    // 12:30 UTC is 07:30 EST in January but 08:30 EDT in July.
    assert.equal(rateAt(office, new Date('2026-01-14T12:30:00Z'), 'America/New_York'), 5e7);
    assert.equal(rateAt(office, new Date('2026-07-15T12:30:00Z'), 'America/New_York'), 6.25e6);
    // Tuesday 23:30 in New York is already Wednesday 04:30 UTC.
    const tueLate = parseCalendar('Tue 23:00-24:00 8Mbit');
    assert.equal(rateAt(tueLate, new Date('2026-11-25T04:30:00Z'), 'America/New_York'), 1e6);
    assert.equal(rateAt(tueLate, new Date('2026-11-25T04:30:00Z'), 'UTC'), UNLIMITED);
  });

  test('transferSeconds follows the calendar across a boundary', () => {
    assert.equal(transferSeconds(parseCalendar('* 80Mbit'), 1e8, wed('10:00')), 10);
    assert.equal(transferSeconds(parseCalendar(''), 1e12, wed('10:00')), 0);
    // 60 s at 1 MB/s until 18:00, then 10 MB/s: 1.6e8 bytes = 60 s + 10 s.
    const cal = parseCalendar('Mon-Fri 08:00-18:00 8Mbit; * 80Mbit');
    const s = transferSeconds(cal, 1.6e8, wed('17:59'));
    assert.ok(Math.abs(s - 70) < 1e-6, `got ${s}`);
    // The same in New York time: 17:59 EST is 22:59 UTC.
    const ny = transferSeconds(cal, 1.6e8, wed('22:59'), 'America/New_York');
    assert.ok(Math.abs(ny - 70) < 1e-6, `got ${ny}`);
  });

  test('bad calendars throw InvalidArgumentError', () => {
    for (const bad of [
      'Mon-Fri 08:00 50Mbit',
      'Funday 08:00-18:00 1Mbit',
      'Mon 25:00-26:00 1Mbit',
      'Mon 08:60-09:00 1Mbit',
      'Mon 08:00-18:00 fast',
      'Mon-Fri 08:00-18:00 50Mbit extra',
      '* 0Mbit',
      'Mon-Xyz 08:00-18:00 1Mbit',
    ]) {
      assert.throws(() => parseCalendar(bad), InvalidArgumentError, `'${bad}'`);
    }
  });
});

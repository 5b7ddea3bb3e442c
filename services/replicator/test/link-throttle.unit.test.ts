/** LinkThrottle follows its calendar on an injected clock: re-read every second, rate by the wall time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRate } from '@vmferry/core';
import { ManualClock } from '@vmferry/testkit';
import { CALENDAR_REFRESH_MS, LinkThrottle } from '../src/link-throttle.js';

test('a new calendar (link set-rate) reaches a running throttle within a second', async () => {
  const clock = new ManualClock();
  let text = '* 400Mbit';
  const throttle = new LinkThrottle(text, () => Promise.resolve(text), { clock }).start();
  try {
    assert.equal(throttle.bucket.bytesPerSecond, parseRate('400Mbit'));
    text = '* 50Mbit';
    await clock.advance(CALENDAR_REFRESH_MS - 1);
    assert.equal(throttle.bucket.bytesPerSecond, parseRate('400Mbit'), 'not re-read yet');
    await clock.advance(1);
    assert.equal(throttle.bucket.bytesPerSecond, parseRate('50Mbit'));
  } finally {
    throttle.stop();
  }
  assert.equal(clock.sleeping, 0, 'stop ends the refresh');
});

test('the rate changes at a calendar boundary of the wall time', async () => {
  const clock = new ManualClock();
  // A Monday, half a second before 08:00 UTC.
  const start = Date.parse('2026-11-30T07:59:59.500Z');
  const calendar = 'Mon-Fri 08:00-18:00 50Mbit; * 400Mbit';
  const throttle = new LinkThrottle(calendar, () => Promise.resolve(calendar), { clock, now: () => new Date(start + clock.nowMs()) }).start();
  try {
    assert.equal(throttle.bucket.bytesPerSecond, parseRate('400Mbit'));
    await clock.advance(CALENDAR_REFRESH_MS);
    assert.equal(throttle.bucket.bytesPerSecond, parseRate('50Mbit'));
  } finally {
    throttle.stop();
  }
});

/**
 * A Clock whose time moves only when the test says so. `sleep` parks the caller; `advance`
 * moves time forward, waking every sleeper that is due in order and letting each one's
 * follow-up work run (and park again) before moving on. `runUntil` advances to the next
 * timer repeatedly until a promise settles, so a test of "this takes 1.75 s at 4 MB/s"
 * finishes in milliseconds and reads the simulated time off `nowMs()`.
 */
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Clock } from '@vmferry/core';

interface Sleeper {
  readonly at: number;
  readonly wake: () => void;
}

export class ManualClock implements Clock {
  private now = 0;
  private sleepers: Sleeper[] = [];

  nowMs(): number {
    return this.now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const sleeper: Sleeper = {
        at: this.now + Math.max(0, ms),
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** How many callers are asleep now. */
  get sleeping(): number {
    return this.sleepers.length;
  }

  /** Moves time forward by `ms`, waking sleepers in time order. */
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    await settle();
    for (let next = this.earliest(); next !== undefined && next.at <= until; next = this.earliest()) {
      this.now = Math.max(this.now, next.at);
      this.sleepers = this.sleepers.filter((s) => s !== next);
      next.wake();
      await settle();
    }
    this.now = until;
  }

  /**
   * Advances from timer to timer until `done` settles, and returns its value. Throws when
   * nobody is asleep and `done` is still pending (it waits on something other than time).
   */
  async runUntil<T>(done: Promise<T>): Promise<T> {
    let settled = false;
    const watched = done.finally(() => {
      settled = true;
    });
    watched.catch(() => undefined);
    await settle();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- `settled` is set by the watched promise while this loop awaits
    while (!settled) {
      const next = this.earliest();
      if (!next) throw new Error('ManualClock.runUntil: the promise waits on something other than this clock');
      await this.advance(next.at - this.now);
    }
    return watched;
  }

  private earliest(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.sleepers) if (!best || s.at < best.at) best = s;
    return best;
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await yieldToIo();
}

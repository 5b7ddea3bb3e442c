/*
 * A token bucket that shapes bytes, shared by every stream on one link or interface.
 * (bottleneck orders sessions; it cannot shape bytes: docs/design.md.) Takers may go into debt
 * by one message, then wait it off in short sleeps, re-reading the rate each time, so a
 * new rate (a calendar boundary, `link set-rate`) takes effect within RECHECK_MS.
 */
import { SYSTEM_CLOCK, type Clock } from '@vmferry/core';

const RECHECK_MS = 100;

export class TokenBucket {
  private tokens: number;
  private last: number;

  /** `rate` bytes/s (Infinity: unlimited); `burstSeconds` of rate may accumulate. */
  constructor(
    private rate: number,
    private readonly burstSeconds = 0.25,
    private readonly clock: Clock = SYSTEM_CLOCK,
  ) {
    this.tokens = Number.isFinite(rate) ? rate * burstSeconds : 0;
    this.last = clock.nowMs();
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  setRate(rate: number): void {
    this.refill();
    this.rate = rate;
    if (Number.isFinite(rate)) this.tokens = Math.min(this.tokens, rate * this.burstSeconds);
  }

  private refill(): void {
    const now = this.clock.nowMs();
    if (Number.isFinite(this.rate)) {
      this.tokens = Math.min(this.rate * this.burstSeconds, this.tokens + ((now - this.last) / 1000) * this.rate);
    }
    this.last = now;
  }

  /** Resolves once `bytes` may pass. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    if (!Number.isFinite(this.rate)) return;
    this.tokens -= bytes;
    while (this.tokens < 0) {
      if (!Number.isFinite(this.rate)) {
        this.tokens = 0;
        return;
      }
      const waitMs = Math.min(RECHECK_MS, (-this.tokens / this.rate) * 1000);
      await this.clock.sleep(Math.max(1, waitMs), signal);
      this.refill();
    }
  }
}

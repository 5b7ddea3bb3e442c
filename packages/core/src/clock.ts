/**
 * Time as a port: code that waits or reads the time takes a Clock, so a test drives time
 * (packages/testkit ManualClock) instead of sleeping, and production passes SYSTEM_CLOCK
 * from its composition root. The core only declares it; the timers live with the caller.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (differences are meaningful, not the origin). */
  nowMs(): number;
  /** Resolves after `ms`; rejects with the signal's reason when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: performance.now() and a timer (globals only, so the core stays import-free). */
export const SYSTEM_CLOCK: Clock = {
  nowMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

import { parseCalendar, rateAt, SYSTEM_CLOCK, type Clock, type RateCalendar } from '@vmferry/core';
import { TokenBucket } from './token-bucket.js';

/** How often the calendar is re-read and the rate re-derived. */
export const CALENDAR_REFRESH_MS = 1000;

export interface LinkThrottleOptions {
  /** The calendar's time zone; default UTC. */
  readonly timeZone?: string;
  /** Times the refresh and the bucket; default SYSTEM_CLOCK. */
  readonly clock?: Clock;
  /** The wall-clock time the calendar is read at; default the system's. */
  readonly now?: () => Date;
}

/**
 * One link's byte shaping: a token bucket shared by every stream pulling from the link,
 * whose rate follows the link's weekly calendar. The calendar text is re-read every
 * second (from the site registry), so `link set-rate` reaches a running transfer within it.
 */
export class LinkThrottle {
  readonly bucket: TokenBucket;
  private calendar: RateCalendar;
  private stopping: AbortController | undefined;
  private readonly timeZone: string;
  private readonly clock: Clock;
  private readonly now: () => Date;

  constructor(
    calendarText: string,
    private readonly readCalendar: () => Promise<string>,
    options: LinkThrottleOptions = {},
  ) {
    this.timeZone = options.timeZone ?? 'UTC';
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.now = options.now ?? (() => new Date());
    this.calendar = parseCalendar(calendarText);
    this.bucket = new TokenBucket(rateAt(this.calendar, this.now(), this.timeZone), undefined, this.clock);
  }

  /** Starts the refresh every CALENDAR_REFRESH_MS, until `stop()`. */
  start(): this {
    const stopping = new AbortController();
    this.stopping = stopping;
    void (async () => {
      for (;;) {
        await this.clock.sleep(CALENDAR_REFRESH_MS, stopping.signal);
        // Not awaited: a slow registry read does not stretch the period.
        this.refresh();
      }
    })().catch(() => undefined); // stop() aborts the sleep
    return this;
  }

  private refresh(): void {
    this.readCalendar().then(
      (text) => {
        if (text !== this.calendar.text) this.calendar = parseCalendar(text);
        this.bucket.setRate(rateAt(this.calendar, this.now(), this.timeZone));
      },
      () => undefined, // keep the last calendar if the registry is briefly unreachable
    );
  }

  stop(): void {
    this.stopping?.abort();
  }
}

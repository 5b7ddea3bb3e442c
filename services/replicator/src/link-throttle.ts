import { parseCalendar, rateAt, type RateCalendar } from '@vmferry/core';
import { TokenBucket } from './token-bucket.js';

/**
 * One link's byte shaping: a token bucket shared by every stream pulling from the link,
 * whose rate follows the link's weekly calendar. The calendar text is re-read every
 * second (from the site registry), so `link set-rate` reaches a running transfer within it.
 */
export class LinkThrottle {
  readonly bucket: TokenBucket;
  private calendar: RateCalendar;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    calendarText: string,
    private readonly readCalendar: () => Promise<string>,
    private readonly timeZone = 'UTC',
  ) {
    this.calendar = parseCalendar(calendarText);
    this.bucket = new TokenBucket(rateAt(this.calendar, new Date(), timeZone));
  }

  start(): this {
    this.timer = setInterval(() => {
      this.readCalendar().then(
        (text) => {
          if (text !== this.calendar.text) this.calendar = parseCalendar(text);
          this.bucket.setRate(rateAt(this.calendar, new Date(), this.timeZone));
        },
        () => undefined, // keep the last calendar if the registry is briefly unreachable
      );
    }, 1000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

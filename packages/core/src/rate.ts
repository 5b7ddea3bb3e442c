/*
 * Link rates and weekly throttle calendars, in the units people use.
 *
 *   rate:      50Mbit, 400Mbit/s, 1Gbit, 10MB/s, 512KB/s, 2MiB/s, unlimited
 *   calendar:  "Mon-Fri 08:00-18:00 50Mbit; * 400Mbit"
 *              entries separated by ';'; each `DAYS HH:MM-HH:MM RATE` or `* RATE` (otherwise);
 *              DAYS is Mon..Sun, a range (Mon-Fri, Fri-Mon) or '*'; the first match wins;
 *              no match (and no '*') means unlimited.
 * Times are wall-clock in the calendar's IANA time zone (the site's), DST included.
 */
import { InvalidArgumentError } from './errors.js';

export const UNLIMITED = Number.POSITIVE_INFINITY;

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };

/**
 * Bytes per second for a rate such as `50Mbit`, `50Mbps`, `10MB/s` or `10MBps`; UNLIMITED for
 * `unlimited`. A lower-case `b` (bit, bps) counts bits, an upper-case `B` bytes.
 */
export function parseRate(text: string): number {
  const t = text.trim();
  if (/^(unlimited|max)$/i.test(t)) return UNLIMITED;
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]i?)?(bit(?:\/s)?|bps|B\/s|Bps)$/i.exec(t);
  const unit = m?.[3] ?? '';
  const bits = /^bit/i.test(unit) || unit === 'bps' || unit === 'b/s';
  const bytes = unit === 'B/s' || unit === 'Bps';
  const prefix = PREFIX[(m?.[2] ?? '').toLowerCase()];
  if (!m || prefix === undefined || (!bits && !bytes)) {
    throw new InvalidArgumentError(`'${text}' is not a rate (examples: 50Mbit, 400Mbps, 10MB/s, unlimited)`);
  }
  const rate = (Number(m[1]) * prefix) / (bits ? 8 : 1);
  if (rate <= 0) throw new InvalidArgumentError(`rate '${text}' must be above zero (use 'unlimited' for no limit)`);
  return rate;
}

export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond)) return 'unlimited';
  const mbit = (bytesPerSecond * 8) / 1e6;
  return mbit >= 1 ? `${Math.round(mbit * 10) / 10} Mbit/s` : `${Math.round(bytesPerSecond / 100) / 10} KB/s`;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export interface CalendarEntry {
  /** Days of the week it applies to (0 = Sunday). */
  readonly days: ReadonlySet<number>;
  /** Minutes after midnight, [from, to); to may be ≤ from for a window crossing midnight. */
  readonly from: number;
  readonly to: number;
  readonly rate: number;
}

export interface RateCalendar {
  readonly entries: readonly CalendarEntry[];
  readonly otherwise: number;
  readonly text: string;
}

const FULL_DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** Index (0 = Sunday) of `Mon` or `Monday` (any case); -1 for anything else. */
function dayIndex(text: string): number {
  const t = text.toLowerCase();
  return Math.max(DAYS.indexOf(t), FULL_DAYS.indexOf(t));
}

function parseDays(text: string, entry: string): Set<number> {
  if (text === '*') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const [a = '', b, extra] = text.split('-');
  for (const d of [a, ...(b === undefined ? [] : [b])]) {
    if (dayIndex(d) < 0) throw new InvalidArgumentError(`calendar entry '${entry}': '${d}' is not a day (Mon … Sun, or a range like Mon-Fri, or *)`);
  }
  if (extra !== undefined) throw new InvalidArgumentError(`calendar entry '${entry}': '${text}' is not a day or day range (Mon, Mon-Fri, *)`);
  const from = dayIndex(a);
  const to = b === undefined ? from : dayIndex(b);
  const out = new Set<number>();
  for (let d = from; ; d = (d + 1) % 7) {
    out.add(d);
    if (d === to) break;
  }
  return out;
}

function parseClock(text: string, entry: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  const h = Number(m?.[1]);
  const min = Number(m?.[2]);
  if (!m || h > 24 || min > 59 || (h === 24 && min > 0)) {
    throw new InvalidArgumentError(`calendar entry '${entry}': '${text}' is not a time from 00:00 to 24:00 (HH:MM)`);
  }
  return h * 60 + min;
}

function entryRate(text: string, entry: string): number {
  try {
    return parseRate(text);
  } catch (e) {
    throw new InvalidArgumentError(`calendar entry '${entry}': ${(e as Error).message}`);
  }
}

/**
 * Parses a weekly calendar. Throws InvalidArgumentError naming the entry and the piece of it
 * that is wrong (an unknown day, a time outside 00:00–24:00, a rate that is not above zero).
 */
export function parseCalendar(text: string): RateCalendar {
  const entries: CalendarEntry[] = [];
  let otherwise = UNLIMITED;
  for (const raw of text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const parts = raw.split(/\s+/);
    if (parts.length === 1 || (parts.length === 2 && parts[0] === '*')) {
      otherwise = entryRate(parts[parts.length - 1] as string, raw);
      continue;
    }
    if (parts.length !== 3) throw new InvalidArgumentError(`calendar entry '${raw}' should be 'DAYS HH:MM-HH:MM RATE' or '* RATE'`);
    const [daysText, window, rateText] = parts as [string, string, string];
    const days = parseDays(daysText, raw);
    const [from, to, extra] = window.split('-');
    if (from === undefined || to === undefined || extra !== undefined) {
      throw new InvalidArgumentError(`calendar entry '${raw}': '${window}' is not a time window (HH:MM-HH:MM)`);
    }
    entries.push({ days, from: parseClock(from, raw), to: parseClock(to, raw), rate: entryRate(rateText, raw) });
  }
  return { entries, otherwise, text };
}

/** Weekday (0 = Sunday) and minute of day of `at` in `timeZone`. */
export function wallClock(at: Date, timeZone: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return { day: DAYS.indexOf(get('weekday').toLowerCase().slice(0, 3)), minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/** The rate in force at `at`. */
export function rateAt(calendar: RateCalendar, at: Date, timeZone = 'UTC'): number {
  const { day, minute } = wallClock(at, timeZone);
  for (const e of calendar.entries) {
    const inWindow = e.from < e.to ? minute >= e.from && minute < e.to : minute >= e.from || minute < e.to;
    // A window crossing midnight belongs, after midnight, to the day it started.
    const startDay = e.from < e.to || minute >= e.from ? day : (day + 6) % 7;
    if (inWindow && e.days.has(startDay)) return e.rate;
  }
  return calendar.otherwise;
}

/** Seconds to move `bytes` starting at `start` under the calendar (stepping minute by minute). */
export function transferSeconds(calendar: RateCalendar, bytes: number, start: Date, timeZone = 'UTC'): number {
  let left = bytes;
  let t = start.getTime();
  for (let step = 0; left > 0 && step < 60 * 24 * 366; step++) {
    const rate = rateAt(calendar, new Date(t), timeZone);
    if (!Number.isFinite(rate)) return (t - start.getTime()) / 1000;
    const next = (Math.floor(t / 60000) + 1) * 60000;
    const can = (rate * (next - t)) / 1000;
    if (can >= left) return (t - start.getTime()) / 1000 + left / rate;
    left -= can;
    t = next;
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * Wall-clock time in an IANA time zone, for calendar repeats (`{"days": 1, "timezone": ...}`)
 * and for showing dates in a task's zone.
 *
 * Built on Intl (the ICU zone data inside Node) rather than moment-timezone: Node already
 * carries the zone rules and keeps them current with its own releases, and croner, which
 * evaluates cron schedules, reads the same Intl data, so a cron schedule and a calendar
 * repeat can never disagree about when a zone changes its clocks.
 *
 * The DST rules (the README repeats them):
 * - a local time that does not exist (clocks spring forward over it) resolves to the first
 *   instant after the gap: 02:30 on a night that jumps from 02:00 to 03:00 is 03:00;
 * - a local time that happens twice (clocks fall back) resolves to its first occurrence.
 * These are the rules croner applies to fixed-time cron patterns, so both kinds agree.
 */
import { quoteValue } from './dates';

/** A local date and time: month 1–12, as people write it. */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

export type ZoneParse = { ok: true; zone: string } | { ok: false; message: string };

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The range of a Date, less room for the ±1 day probes below. */
const SAFE_MS = 8.64e15 - 2 * DAY_MS;
/** Longer than any IANA name; refuse before handing megabytes to ICU. */
const MAX_ZONE_LENGTH = 64;

/**
 * One formatter per zone: building one costs far more than using it. Bounded, since zone
 * names come from documents and ICU accepts any letter case (`europe/PARIS`).
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 1000;

function formatterFor(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(zone, formatter);
  }
  return formatter;
}

/** Check a `timezone` value: an IANA name the runtime knows (`Europe/Paris`, `UTC`). */
export function parseTimeZone(value: unknown, field: string): ZoneParse {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ZONE_LENGTH) {
    return { ok: false, message: `${field}: ${quoteValue(value)} is not a time zone name (expected an IANA name like "Europe/Paris")` };
  }
  try {
    formatterFor(value);
  } catch {
    return { ok: false, message: `${field}: unknown time zone ${JSON.stringify(value)}` };
  }
  return { ok: true, zone: value };
}

/** The local date and time in `zone` at the instant `ms`. */
export function wallClockAt(zone: string, ms: number): WallClock {
  const fields: Record<string, string> = {};
  for (const part of formatterFor(zone).formatToParts(ms)) fields[part.type] = part.value;
  const yearOfEra = Number(fields.year);
  return {
    // Years before 1 CE never reach here (task dates start at 0001), but keep them right.
    year: fields.era === 'BC' || fields.era === 'B' ? 1 - yearOfEra : yearOfEra,
    month: Number(fields.month),
    day: Number(fields.day),
    hour: Number(fields.hour),
    minute: Number(fields.minute),
    second: Number(fields.second),
    millisecond: ((ms % 1000) + 1000) % 1000,
  };
}

/** How far `zone`'s clocks are ahead of UTC at the instant `ms`, in milliseconds. */
export function zoneOffsetMs(zone: string, ms: number): number {
  return wallClockAsUtc(wallClockAt(zone, ms)) - ms;
}

/**
 * The instant at which `zone`'s clocks show `wall`, by the DST rules above. NaN when the
 * date is outside the range of a Date.
 */
export function instantOf(zone: string, wall: WallClock): number {
  const localMs = wallClockAsUtc(wall);
  if (!(Math.abs(localMs) <= SAFE_MS)) return NaN;
  // The offsets a day either side bound every offset in force around this local time
  // (zones change their clocks at most once in a day).
  const offsetBefore = zoneOffsetMs(zone, localMs - DAY_MS);
  const offsetAfter = zoneOffsetMs(zone, localMs + DAY_MS);
  const matches = [...new Set([offsetBefore, offsetAfter])]
    .map((offset) => localMs - offset)
    .filter((ms) => zoneOffsetMs(zone, ms) === localMs - ms)
    .sort((a, b) => a - b);
  if (matches.length > 0) return matches[0]!;
  return transitionBetween(zone, localMs - offsetAfter, localMs - offsetBefore, offsetAfter);
}

/**
 * The first instant in (fromMs, toMs] at which `zone` uses `offsetAfter`: the end of a gap.
 * Found by bisection, as Intl exposes offsets, not transitions.
 */
function transitionBetween(zone: string, fromMs: number, toMs: number, offsetAfter: number): number {
  let low = Math.min(fromMs, toMs);
  let high = Math.max(fromMs, toMs);
  // A gap longer than a day is not a DST change; there is no sensible local time to find.
  if (!(high - low <= DAY_MS + HOUR_MS)) return NaN;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (zoneOffsetMs(zone, middle) === offsetAfter) high = middle;
    else low = middle;
  }
  return high;
}

/** Days in a month (1–12) of a proleptic Gregorian year. */
export function daysInMonth(year: number, month: number): number {
  return new Date(wallClockAsUtc({ year, month: month + 1, day: 0, hour: 0, minute: 0, second: 0, millisecond: 0 })).getUTCDate();
}

/**
 * The wall clock read as if it were UTC. `setUTCFullYear`, unlike `Date.UTC`, keeps years
 * 0–99 as they are; out-of-range fields roll over (day 0 is the last day of the month before).
 */
export function wallClockAsUtc(wall: WallClock): number {
  const date = new Date(0);
  date.setUTCFullYear(wall.year, wall.month - 1, wall.day);
  date.setUTCHours(wall.hour, wall.minute, wall.second, wall.millisecond);
  return date.getTime();
}

/** `2026-03-29 03:00:00 +02:00`: how a date reads on a clock in `zone`, with its offset. */
export function formatInZone(zone: string, ms: number): string {
  const wall = wallClockAt(zone, ms);
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  const offsetMinutes = Math.round(zoneOffsetMs(zone, ms) / 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const offset = `${sign}${pad(Math.floor(Math.abs(offsetMinutes) / 60))}:${pad(Math.abs(offsetMinutes) % 60)}`;
  const weekday = WEEKDAYS[new Date(wallClockAsUtc(wall)).getUTCDay()];
  return `${weekday} ${pad(wall.year, 4)}-${pad(wall.month)}-${pad(wall.day)} ${pad(wall.hour)}:${pad(wall.minute)}:${pad(wall.second)} ${offset}`;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * Durations as users write them in `repeat` and `retry.delay`: an object of moment.js
 * duration keys (any of moment's spellings), an ISO 8601 duration string, or a number of
 * milliseconds; on the command line also the compact form `1M7d` (`--every`).
 * Calendar arithmetic is UTC unless a time zone is given, months first, so Jan 31 + 1 month
 * is Feb 28.
 */
import moment from 'moment';
import { quoteValue } from './dates';
import { daysInMonth, instantOf, wallClockAsUtc, wallClockAt } from './zones';

/** A parsed duration: every unit present, zero when not given. */
export interface Duration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
  milliseconds: number;
}

export type DurationParse = { ok: true; duration: Duration } | { ok: false; message: string };

export interface DurationOptions {
  /** Keys that may sit beside the duration keys (a repeat also carries `limit`, `until`...). */
  ignoreKeys?: readonly string[];
  /** Accept a zero-length duration (a retry delay of 0 retries at once). @default false */
  allowZero?: boolean;
}

const DAY_MS = 86_400_000;
/** Mean Gregorian year and month: exact over 400 years, close enough for estimates and caps. */
const YEAR_MS = 365.2425 * DAY_MS;
const MONTH_MS = YEAR_MS / 12;
const MAX_YEARS = 1000;

/**
 * moment.js's spellings of each unit. A Map, not an object literal, so that user keys such as
 * `constructor` or `__proto__` cannot find Object.prototype. Case matters: `M` is months and
 * `m` minutes, as in moment.
 */
const UNIT_BY_KEY: ReadonlyMap<string, keyof Duration> = new Map([
  ['years', 'years'], ['year', 'years'], ['y', 'years'],
  ['months', 'months'], ['month', 'months'], ['M', 'months'],
  ['weeks', 'weeks'], ['week', 'weeks'], ['w', 'weeks'],
  ['days', 'days'], ['day', 'days'], ['d', 'days'],
  ['hours', 'hours'], ['hour', 'hours'], ['h', 'hours'],
  ['minutes', 'minutes'], ['minute', 'minutes'], ['m', 'minutes'],
  ['seconds', 'seconds'], ['second', 'seconds'], ['s', 'seconds'],
  ['milliseconds', 'milliseconds'], ['millisecond', 'milliseconds'], ['ms', 'milliseconds'],
]);

/** Units whose length depends on the calendar: only whole numbers of them make sense. */
const CALENDAR_UNITS: ReadonlySet<keyof Duration> = new Set(['years', 'months', 'weeks', 'days']);

const ISO_DURATION =
  /^P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,12}(?:[.,]\d{1,9})?)H)?(?:(\d{1,12}(?:[.,]\d{1,9})?)M)?(?:(\d{1,12}(?:[.,]\d{1,9})?)S)?)?$/;

const EXPECTED = 'expected e.g. {"days": 1}, "P1D" or a number of milliseconds';

export function zeroDuration(): Duration {
  return { years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 0, milliseconds: 0 };
}

/** Parse a duration; `field` names it in messages (`repeat`, `retry.delay`). Never throws. */
export function parseDuration(value: unknown, field: string, options: DurationOptions = {}): DurationParse {
  let parsed: DurationParse;
  if (typeof value === 'number') parsed = fromMilliseconds(value, field);
  else if (typeof value === 'string') parsed = fromIsoString(value, field);
  else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    parsed = fromObject(value as Record<string, unknown>, field, options.ignoreKeys ?? []);
  } else parsed = { ok: false, message: `${field}: ${quoteValue(value)} is not a duration (${EXPECTED})` };
  if (!parsed.ok) return parsed;

  const approxMs = approximateMs(parsed.duration);
  if (!(approxMs <= MAX_YEARS * YEAR_MS)) {
    return { ok: false, message: `${field}: ${quoteValue(value)} is longer than ${MAX_YEARS} years` };
  }
  if (approxMs === 0 && !options.allowZero) {
    return {
      ok: false,
      message: `${field}: ${quoteValue(value)} has zero length (a repeat of zero length would run forever)`,
    };
  }
  return parsed;
}

/**
 * `ms` plus `k` times `duration`, in UTC. Months (years count as 12) go first through
 * moment, which clamps to the month's last day; then days and time as plain milliseconds,
 * exact in UTC. Computing the k-th date from one start, rather than adding `duration` k
 * times, keeps Jan 31 monthly on the 31st whenever the month has one.
 *
 * With `timeZone`, years, months, weeks and days move the *local* date in that zone and keep
 * the local time of day (09:00 stays 09:00 across a DST change; a local time that does not
 * exist that day becomes the first instant after the gap, one that happens twice its first
 * occurrence — see zones.ts); hours, minutes, seconds and milliseconds are then added as
 * elapsed time, so `{"hours": 1}` is 60 real minutes in any zone.
 * NaN when the result leaves the range of a Date.
 */
export function addDuration(ms: number, duration: Duration, k = 1, timeZone?: string): number {
  const afterCalendar = timeZone === undefined ? addCalendarUtc(ms, duration, k) : addCalendarInZone(ms, duration, k, timeZone);
  const result = afterCalendar + Math.round(k * timeOfDayMs(duration));
  return Math.abs(result) <= 8.64e15 ? result : NaN;
}

function addCalendarUtc(ms: number, duration: Duration, k: number): number {
  const months = duration.years * 12 + duration.months;
  const afterMonths = months === 0 ? ms : moment.utc(ms).add(k * months, 'months').valueOf();
  return afterMonths + k * (duration.weeks * 7 + duration.days) * DAY_MS;
}

function addCalendarInZone(ms: number, duration: Duration, k: number, timeZone: string): number {
  const months = k * (duration.years * 12 + duration.months);
  const days = k * (duration.weeks * 7 + duration.days);
  if (months === 0 && days === 0) return ms;
  if (!(Math.abs(ms) <= 8.64e15)) return NaN;
  const wall = wallClockAt(timeZone, ms);
  // Months first, clamped to the month's last day (as moment does in UTC)...
  const monthIndex = wall.year * 12 + (wall.month - 1) + months;
  const year = Math.floor(monthIndex / 12);
  const month = monthIndex - year * 12 + 1;
  const day = Math.min(wall.day, daysInMonth(year, month));
  // ...then days, on the calendar: a day too many rolls into the next month.
  const date = new Date(wallClockAsUtc({ year, month, day: day + days, hour: 0, minute: 0, second: 0, millisecond: 0 }));
  if (Number.isNaN(date.getTime())) return NaN;
  return instantOf(timeZone, {
    ...wall,
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
  });
}

/** The length of `duration` when it starts at `fromMs` (months vary in length). */
export function durationToMs(duration: Duration, fromMs: number): number {
  return addDuration(fromMs, duration) - fromMs;
}

/** Length with mean months and years: for estimates and caps, never for dates. */
export function approximateMs(duration: Duration): number {
  return (
    duration.years * YEAR_MS +
    duration.months * MONTH_MS +
    (duration.weeks * 7 + duration.days) * DAY_MS +
    timeOfDayMs(duration)
  );
}

function timeOfDayMs(duration: Duration): number {
  return duration.hours * 3_600_000 + duration.minutes * 60_000 + duration.seconds * 1000 + duration.milliseconds;
}

function fromMilliseconds(value: number, field: string): DurationParse {
  if (!Number.isFinite(value) || value < 0) {
    return { ok: false, message: `${field}: ${quoteValue(value)} is not a non-negative number of milliseconds` };
  }
  return { ok: true, duration: { ...zeroDuration(), milliseconds: value } };
}

function fromIsoString(value: string, field: string): DurationParse {
  const match = value.length <= 100 ? ISO_DURATION.exec(value) : null;
  // `P` and `PT` alone match the pattern but name no unit.
  if (!match || value === 'P' || value.endsWith('T')) {
    return { ok: false, message: `${field}: ${quoteValue(value)} is not an ISO 8601 duration (expected e.g. "P1D", "PT2H", "P1M7D")` };
  }
  const number = (text: string | undefined): number => (text === undefined ? 0 : Number(text.replace(',', '.')));
  const [, years, months, weeks, days, hours, minutes, seconds] = match;
  return {
    ok: true,
    duration: {
      years: number(years),
      months: number(months),
      weeks: number(weeks),
      days: number(days),
      hours: number(hours),
      minutes: number(minutes),
      seconds: number(seconds),
      milliseconds: 0,
    },
  };
}

function fromObject(value: Record<string, unknown>, field: string, ignoreKeys: readonly string[]): DurationParse {
  const duration = zeroDuration();
  for (const key of Object.keys(value)) {
    if (ignoreKeys.includes(key)) continue;
    const unit = UNIT_BY_KEY.get(key);
    if (unit === undefined) {
      return {
        ok: false,
        message:
          `${field}: unknown duration key ${quoteValue(key)} (expected years, months, weeks, days, hours, ` +
          'minutes, seconds, milliseconds or y, M, w, d, h, m, s, ms)',
      };
    }
    const amount = value[key];
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      return { ok: false, message: `${field}.${key}: ${quoteValue(amount)} is not a non-negative number` };
    }
    if (CALENDAR_UNITS.has(unit) && !Number.isInteger(amount)) {
      return { ok: false, message: `${field}.${key}: ${quoteValue(amount)} is not a whole number of ${unit}` };
    }
    // Several spellings of one unit add up, as moment does with {d: 1, days: 1}.
    duration[unit] += amount;
  }
  return { ok: true, duration };
}

/** One part of the compact form; `ms` comes before `m` and `s` so that it is read whole. */
const COMPACT_PART = /(\d{1,12}(?:\.\d{1,9})?)(ms|y|M|w|d|h|m|s)/y;

/**
 * The compact form of a duration, for the command line: numbers with moment's one-letter
 * units, largest first or in any order, each unit once: `1M7d` (1 month 7 days), `1h30m`,
 * `90s`, `500ms`, `1y`. Case matters as in moment: `M` is months, `m` minutes. Calendar
 * units (y, M, w, d) take whole numbers; time units may have a fraction (`1.5h`).
 * Returns the same Duration as the JSON forms, checked by the same rules. Never throws.
 */
export function parseCompactDuration(text: string, field: string): DurationParse {
  const compact = text.trim();
  const units: Record<string, number> = {};
  const invalid: DurationParse = {
    ok: false,
    message: `${field}: ${quoteValue(text)} is not a duration (expected e.g. 1M7d, 1h30m, 90s, 500ms; units y M w d h m s ms)`,
  };
  if (compact.length === 0 || compact.length > 100) return invalid;
  // A sticky copy per call: each part must start where the previous one ended.
  const part = new RegExp(COMPACT_PART);
  while (part.lastIndex < compact.length) {
    const match = part.exec(compact);
    if (!match) return invalid;
    const [, amount, unit] = match;
    if (Object.hasOwn(units, unit!)) return { ok: false, message: `${field}: ${quoteValue(text)} gives the unit ${unit} twice` };
    units[unit!] = Number(amount);
    // Spaces between parts are fine: `1M 7d`.
    while (compact[part.lastIndex] === ' ') part.lastIndex++;
  }
  return parseDuration(units, field);
}

/** Long unit names, in the order people read them. */
const SPEC_UNITS: readonly (keyof Duration)[] = ['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds', 'milliseconds'];

/** A duration as the object a task document stores: `{"months": 1, "days": 7}`, zero units left out. */
export function durationToObject(duration: Duration): Partial<Record<keyof Duration, number>> {
  const object: Partial<Record<keyof Duration, number>> = {};
  for (const unit of SPEC_UNITS) if (duration[unit] !== 0) object[unit] = duration[unit];
  return object;
}

export type FixedDurationParse = { ok: true; ms: number } | { ok: false; message: string };

/**
 * A duration of fixed length, in whole milliseconds: a repeat's `jitter` and `delay`. Any form a
 * task takes (a number of milliseconds, an ISO 8601 duration `"PT5M"`, an object `{"minutes":
 * 5}`) and the compact form of the command line (`"5m"`, `"1h30m"`, `"90s"`), since that is how
 * people write them. Zero is allowed (none). Months and years are refused: they have no fixed
 * length; weeks and days count as 7 × 24 h and 24 h of elapsed time. Never throws.
 */
export function parseFixedDurationMs(value: unknown, field: string): FixedDurationParse {
  const compact = typeof value === 'string' && value.trim() !== '' && !value.trim().startsWith('P');
  const parsed = compact ? parseCompactDuration(value as string, field) : parseDuration(value, field, { allowZero: true });
  if (!parsed.ok) return parsed;
  if (parsed.duration.years > 0 || parsed.duration.months > 0) {
    return { ok: false, message: `${field}: ${quoteValue(value)} has no fixed length (months and years vary); use weeks, days or less` };
  }
  return { ok: true, ms: Math.round(approximateMs(parsed.duration)) };
}

/**
 * The shortest time `duration` can take from any date: a month of 28 days, a year of 365, and in
 * a time zone a day of 23 hours (a spring-forward day). What a jitter must stay below.
 */
export function shortestMs(duration: Duration, timeZone?: string): number {
  const dayMs = timeZone === undefined ? DAY_MS : DAY_MS - 3_600_000;
  return (
    duration.years * 365 * dayMs +
    duration.months * 28 * dayMs +
    (duration.weeks * 7 + duration.days) * dayMs +
    timeOfDayMs(duration)
  );
}

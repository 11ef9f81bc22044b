/**
 * Task dates: the one ISO 8601 form After accepts in `date` and `repeat.until`, and the
 * canonical form the worker writes back.
 *
 * Only the *extended* form (`2013-01-12T10:00:00Z`, dashes and colons) is accepted. The
 * worker finds due tasks with a Mango query on the [worker, status, date] index, which
 * compares `date` as a *string*; extended-form dates sort as text in time order, except
 * for their zone offset (at most ±14:00, which the worker covers with a 14 h margin) and
 * for spellings of the same instant that sort a little early (`2013-01-12`, a space
 * instead of `T`, `10:00Z` vs `10:00:00.000Z`) — early is harmless, the worker re-checks
 * the parsed date. The basic form (`20130112T1000Z`), week and ordinal dates, and years
 * outside 0001–9999 would sort in the wrong place and be found late or never, so they
 * are rejected with a reason instead.
 */

export type DateParse = { ok: true; ms: number } | { ok: false; message: string };

/** The last instant a task date may name: 9999-12-31T23:59:59.999Z. */
export const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** The first: 0001-01-01T00:00:00.000Z (Date.UTC would read year 1 as 1901). */
const MIN_DATE_MS = new Date(0).setUTCFullYear(1, 0, 1);

/** The real zone offsets on Earth span −12:00 … +14:00; the worker's margin is 14 h. */
const MAX_OFFSET_MINUTES = 14 * 60;

/** Longer than any extended-form date: refuse before running a regex over megabytes. */
const MAX_DATE_LENGTH = 64;

const EXAMPLE = 'expected e.g. 2013-01-12T10:00:00Z';

const EXTENDED_FORM =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
const BASIC_FORM = /^[+-]?\d{8}(T\d{2,6}([.,]\d+)?(Z|[+-]\d{2,4})?)?$/;
const WEEK_DATE = /^[+-]?\d{4}-?W\d{2}/;
const ORDINAL_DATE = /^[+-]?\d{4}-?\d{3}(T|$)/;
const EXPANDED_YEAR = /^([+-]\d{4,6}|\d{5,})-\d{2}/;

/** Parse a task date. No zone means UTC; a date alone is midnight UTC. Never throws. */
export function parseTaskDate(value: unknown): DateParse {
  if (typeof value !== 'string') return rejected(value, 'not a string');
  if (value.length > MAX_DATE_LENGTH) return rejected(value, 'too long');
  const match = EXTENDED_FORM.exec(value);
  if (!match) return rejected(value, reasonForShape(value));

  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fractionText, zone] = match;
  const year = Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  const hour = Number(hourText ?? 0);
  const minute = Number(minuteText ?? 0);
  const second = Number(secondText ?? 0);
  // Only milliseconds are kept: digits past the third are truncated, as Date does.
  const millisecond = fractionText ? Number(fractionText.slice(0, 3).padEnd(3, '0')) : 0;

  if (year < 1) return rejected(value, 'year 0000 is outside 0001–9999');
  if (month < 1 || month > 12) return rejected(value, `month ${monthText} does not exist`);
  if (hour > 23) return rejected(value, `hour ${hourText} does not exist`);
  if (minute > 59) return rejected(value, `minute ${minuteText} does not exist`);
  if (second > 59) return rejected(value, `second ${secondText} does not exist`);

  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return rejected(value, `${yearText}-${monthText} has no day ${dayText}`);
  }
  date.setUTCHours(hour, minute, second, millisecond);

  const offsetMinutes = zone === undefined ? 0 : parseOffsetMinutes(zone);
  if (offsetMinutes === undefined) return rejected(value, `zone offset ${zone} is outside −14:00…+14:00`);
  const ms = date.getTime() - offsetMinutes * 60_000;
  // The worker writes dates in UTC: `0001-01-01T00:00+14:00` would come back as year 0000.
  if (ms < MIN_DATE_MS || ms > MAX_DATE_MS) return rejected(value, 'is outside 0001-01-01T00:00:00Z–9999-12-31T23:59:59.999Z once in UTC, the dates a task is written with');
  return { ok: true, ms };
}

/** The last few instants formatted, and their strings (a ring). */
const recentMs = [Number.NaN, Number.NaN, Number.NaN, Number.NaN];
const recentText = ['', '', '', ''];
let nextSlot = 0;

/**
 * The canonical form the worker writes: `toISOString()`, always UTC with milliseconds. A burst's
 * writes format the same few instants thousands of times (a claim's lease end, a run's start and
 * end, its history entry): the last four are remembered.
 */
export function formatDate(ms: number): string {
  for (let i = 0; i < recentMs.length; i++) if (recentMs[i] === ms) return recentText[i]!;
  const text = new Date(ms).toISOString();
  recentMs[nextSlot] = ms;
  recentText[nextSlot] = text;
  nextSlot = (nextSlot + 1) % recentMs.length;
  return text;
}

/**
 * A value as it may appear in a one-line error message: JSON-quoted (so control characters
 * show escaped), at most `max` characters, and never walking deep into a user's payload.
 */
export function quoteValue(value: unknown, max = 80): string {
  let text: string;
  try {
    text = preview(value, 2, max);
  } catch {
    text = 'an unprintable value';
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function preview(value: unknown, depth: number, max: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > max ? value.slice(0, max) : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return `${value}n`;
    case 'object':
      break;
    default:
      return `a ${typeof value}`;
  }
  if (value === null) return 'null';
  const ITEMS = 10;
  if (Array.isArray(value)) {
    if (depth === 0) return value.length ? '[…]' : '[]';
    const items = value.slice(0, ITEMS).map((item: unknown) => preview(item, depth - 1, max));
    return `[${items.join(',')}${value.length > ITEMS ? ',…' : ''}]`;
  }
  const keys = Object.keys(value);
  if (depth === 0) return keys.length ? '{…}' : '{}';
  const fields = keys
    .slice(0, ITEMS)
    .map((key) => `${JSON.stringify(key)}:${preview((value as Record<string, unknown>)[key], depth - 1, max)}`);
  return `{${fields.join(',')}${keys.length > ITEMS ? ',…' : ''}}`;
}

function rejected(value: unknown, reason: string): DateParse {
  return { ok: false, message: `${quoteValue(value)} is not an ISO 8601 date (${reason}; ${EXAMPLE})` };
}

function reasonForShape(value: string): string {
  if (BASIC_FORM.test(value)) return 'basic form; write the extended form with dashes and colons';
  if (WEEK_DATE.test(value)) return 'week dates are not supported';
  if (ORDINAL_DATE.test(value)) return 'ordinal dates are not supported';
  if (EXPANDED_YEAR.test(value)) return 'years outside 0001–9999 are not supported';
  return 'unrecognised form';
}

/** Minutes east of UTC for `Z`, `±HH`, `±HHMM` or `±HH:MM`; undefined when out of range. */
function parseOffsetMinutes(zone: string): number | undefined {
  if (zone === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0;
  const total = hours * 60 + minutes;
  if (minutes > 59 || total > MAX_OFFSET_MINUTES) return undefined;
  return zone.startsWith('-') ? -total : total;
}

/**
 * Cron schedules, evaluated by croner (pinned in package.json; never a hand-written parser).
 *
 * What a pattern accepts is croner's: 5 fields (minute precision) or 6 (a leading seconds
 * field), month and weekday names (`JAN`, `mon-fri`), steps and ranges, `L` (last day of the
 * month, or `5L` the last Friday), `#` (`FRI#2`, the second Friday), `W` (`15W`, the weekday
 * nearest the 15th), and the nicknames `@yearly @monthly @weekly @daily @hourly`. A 7th
 * (year) field is refused: every task date must be able to repeat, and year 9999 is the end.
 * When both day-of-month and day-of-week are restricted, a day matching either runs (as in
 * Vixie cron).
 *
 * Without a time zone a pattern is read in UTC, never in the worker machine's own zone, so
 * a schedule does not change with the host it runs on.
 *
 * DST (croner's rules, which the tests pin; docs/spec.md §7 names two croner DST bugs, #284 and
 * #286, fixed in 9.1.1 — this project pins a later release and keeps the DST tables):
 * - a *fixed-time* pattern (no `*` and no step in its second, minute and hour fields, e.g.
 *   `30 2 * * *` or `0 2,14 * * *`) whose local time does not exist that day runs at the
 *   first instant after the gap (02:30 → 03:00), and one whose local time happens twice runs
 *   once, at the first occurrence;
 * - an *interval* pattern (`*` or a step in those fields, e.g. `*\/15 * * * *`, `0 * * * *`)
 *   follows real time: times inside a gap do not exist and are skipped, and a repeated
 *   hour runs again, since it is another hour that really passes.
 */
import { Cron, type CronOptions } from 'croner';
import { MAX_DATE_MS, quoteValue } from './dates';

export type CronCheck = { ok: true } | { ok: false; message: string };

/** Longer than any sensible pattern; refuse before parsing megabytes. */
const MAX_PATTERN_LENGTH = 256;

/**
 * `no-wildcard` makes lists and ranges of fixed times (`0 2,14 * * *`) fixed-time too, so a
 * 02:00 run in a spring-forward gap moves to 03:00 instead of being skipped (croner's
 * default rule counts only single values). Vixie cron draws the line the same way.
 */
const CRON_OPTIONS: CronOptions = { mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard' };

/** Parsed patterns by zone and pattern: parsing is cheap, but previews ask many times. */
const schedules = new Map<string, Cron>();
const MAX_CACHED = 500;

function scheduleFor(pattern: string, zone: string): Cron {
  const key = `${zone}\u0000${pattern}`;
  let schedule = schedules.get(key);
  if (schedule === undefined) {
    // Without a function croner arms no timer: a Cron here is a pure date calculator.
    schedule = new Cron(pattern, { ...CRON_OPTIONS, timezone: zone });
    if (schedules.size >= MAX_CACHED) schedules.clear();
    schedules.set(key, schedule);
  }
  return schedule;
}

/**
 * Check a pattern in a zone (already checked by parseTimeZone): croner parses it, and it
 * must fire at least once (`0 0 30 2 *` never does). The message carries croner's reason.
 */
export function checkCronPattern(pattern: unknown, zone: string, field: string): CronCheck {
  if (typeof pattern !== 'string' || pattern.trim().length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
    return { ok: false, message: `${field}: ${quoteValue(pattern)} is not a cron expression (expected e.g. "0 9 * * 1-5")` };
  }
  let schedule: Cron;
  try {
    schedule = scheduleFor(pattern, zone);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, '');
    return { ok: false, message: `${field}: ${quoteValue(pattern)} is not a valid cron expression: ${reason}` };
  }
  // Without a year field a pattern that fires at all fires within 8 years of any date.
  if (schedule.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) {
    return { ok: false, message: `${field}: ${quoteValue(pattern)} never fires (no date matches it)` };
  }
  return { ok: true };
}

/**
 * The first fire time strictly after `afterMs`, or null when there is none before the end
 * of year 9999. Fire times are whole seconds.
 */
export function cronFireAfter(pattern: string, zone: string, afterMs: number): number | null {
  if (!Number.isFinite(afterMs) || afterMs >= MAX_DATE_MS) return null;
  const schedule = scheduleFor(pattern, zone);
  let fromMs = afterMs;
  // croner promises a later date; should a DST regression ever hand back one that is not
  // (croner #286 did, and fired every millisecond), step past it instead of looping on it.
  for (let attempt = 0; attempt < 3; attempt++) {
    const next = schedule.nextRun(new Date(fromMs))?.getTime();
    if (next === undefined || !(next <= MAX_DATE_MS)) return null;
    if (next > afterMs) return next;
    fromMs += 1000;
  }
  return null;
}

/** The latest fire time at or before `atMs`, or null when there is none. */
export function cronFireAtOrBefore(pattern: string, zone: string, atMs: number): number | null {
  if (!Number.isFinite(atMs)) return null;
  const referenceMs = Math.min(atMs, MAX_DATE_MS) + 1;
  // previousRuns counts a run earlier in the reference's own second, so `atMs + 1` makes a
  // fire time exactly at `atMs` count.
  const [previous] = scheduleFor(pattern, zone).previousRuns(1, new Date(referenceMs));
  const ms = previous?.getTime();
  return ms !== undefined && ms <= atMs ? ms : null;
}

/** Fire times sampled by cronShortestGapMs: enough to see `0,1 * * * *`'s one-minute gap. */
const GAP_SAMPLES = 12;

/**
 * The shortest time between two fire times, sampled from a fixed date (so it is the same for
 * every caller): what `worker.min_repeat_ms` compares a cron repeat with.
 */
export function cronShortestGapMs(pattern: string, zone: string): number {
  const runs = scheduleFor(pattern, zone).nextRuns(GAP_SAMPLES, new Date(Date.UTC(2026, 0, 1)));
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < runs.length; i++) shortest = Math.min(shortest, runs[i]!.getTime() - runs[i - 1]!.getTime());
  return shortest;
}

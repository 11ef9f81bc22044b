/**
 * The dates a parsed repeat leads to.
 *
 * How a repeat behaves (the README repeats this):
 * - A repeat runs the task again after each *success*; a failure with no retry left ends the
 *   series in `error`.
 * - Dates do not drift. A series has an anchor: the task's first date, which the worker keeps
 *   in the document field `anchor_date` (when absent, the current `date` is the anchor).
 *   The k-th date is `anchor + k × interval`, computed from the anchor each time, so a
 *   monthly series from Jan 31 runs on Feb 28 (29 in leap years), Mar 31, Apr 30, and a run
 *   that starts late or lasts long does not push later dates back.
 * - After an outage (the worker or the database was down) an overdue task runs once, at
 *   once; that late run stands for every date that passed while it waited, and the series
 *   continues at its first date after the moment the run started.
 * - The next date is the first series date after the run that just ended started (after
 *   its `date` when it started on time). When that date has already passed too (the run
 *   outlasted the interval), `misfire` decides: `"run_once"` (the default) runs once, at
 *   once, for the latest missed date, then continues with the next future date; `"skip"`
 *   drops the missed dates and waits for the next future one.
 * - `limit` is the total number of successful runs of the series: `limit: 3` runs three
 *   times, then the task is `done`. `repetitions` counts the successful runs so far.
 * - `until` ends the series: no run is scheduled after it.
 * - A series also ends when its next date would be after 9999-12-31, the last date a task
 *   may carry.
 * - Calendar units (years, months, weeks, days) count in UTC, or in the repeat's `timezone`
 *   when it has one: `{"days": 1, "timezone": "America/New_York"}` from 09:00 local stays at
 *   09:00 local across DST changes. Time units (hours and less) are always elapsed time.
 *   DST rules for local times that do not exist or happen twice: see zones.ts.
 * - A cron repeat (`{"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}`) has no anchor: the
 *   pattern names the dates (see cron.ts). The task's `date` is its first run, whether or
 *   not the pattern matches it (set `date` to now to start the schedule at once); each later
 *   run is the pattern's first fire time after the run before it started, with the same
 *   `misfire`, `limit` and `until` rules as above.
 * - Runs of a task never overlap: the next date is computed when a run ends. A run that
 *   outlasts the interval has missed dates, and `misfire` decides as above (`run_once`: the
 *   next run starts at once, then the series continues on its own dates).
 * - `delay` (cron only, `{"cron": "0 * * * *", "delay": "30s"}`) moves every fire time by a
 *   fixed amount: the series' dates are the pattern's fire times plus the delay, and every rule
 *   above applies to those dates (a delay may be longer than the pattern's gaps: `"90m"` on an
 *   hourly pattern runs at half past every hour).
 * - `jitter` (`"5m"`) spreads the runs: each series date S runs at S + an offset in
 *   [0, jitter), derived from the task's id and S alone (a stable hash), so every instance
 *   computes the same date, `after next` shows it, and nothing runs before S. The offset moves
 *   the run, never the series: the next series date is computed from S (an interval repeat from
 *   its anchor, a cron one from the pattern), so the schedule does not drift. A jittered `date`
 *   is recognised as S + offset(S) when the worker computes the next one; any other date (the
 *   user's first date, a retry's, a reschedule) counts as a series date of its own, as without
 *   jitter. The jitter must be shorter than the shortest time between two series dates, so that
 *   each run stays before the next date; an offset never carries a run past `until`. Retries
 *   are not jittered.
 */
import { stableFraction } from '../hash';
import { cronFireAfter, cronFireAtOrBefore } from './cron';
import { MAX_DATE_MS } from './dates';
import { addDuration, approximateMs, Duration } from './duration';
import type { CronRepeat, Repeat } from './repeat';

export interface SeriesState {
  /** The series' first date. */
  anchorMs: number;
  /** The date of the run that just ended. */
  dateMs: number;
  /**
   * When that run started; absent (or before `dateMs`) means on time. Dates that passed
   * while the run waited to start (the worker or the database was down) are covered by
   * this one late run, so they are not run again.
   */
  startedAtMs?: number;
  /** Successful runs of the series, including the one that just ended. */
  repetitions: number;
  nowMs: number;
  /** The task's `_id`: a jittered repeat's offsets derive from it. Without it, no jitter. */
  taskId?: string;
}

/**
 * The date of the series' next run, or null when the series is over. Never loops per date.
 * With a jitter (and `state.taskId`) the date is a series date plus its offset (see the header).
 */
export function nextRepeat(repeat: Repeat, state: SeriesState): { dateMs: number } | null {
  if (repeat.limit !== undefined && state.repetitions >= repeat.limit) return null;
  if (!Number.isFinite(state.dateMs) || !Number.isFinite(state.nowMs)) return null;
  const untilMs = Math.min(repeat.untilMs ?? MAX_DATE_MS, MAX_DATE_MS);
  const anchorMs = Number.isFinite(state.anchorMs) ? state.anchorMs : state.dateMs;
  const series = seriesOf(repeat, anchorMs);
  const runAt = runDates(repeat, state.taskId, untilMs);

  // The run that just ended stands for its series date: a jittered date is that date moved by
  // its offset, and so is the moment the run started.
  const current = seriesDateOf(series, runAt, state.dateMs, repeat.jitterMs ?? 0);
  // A run that started late covers the dates that passed while it waited (an outage is one
  // run, not one per missed date); never fewer than its own date, whatever the clocks say.
  const startedAtMs = state.startedAtMs === undefined ? Number.NaN : state.startedAtMs - current.offsetMs;
  const coveredUntilMs = Number.isFinite(startedAtMs) ? Math.max(current.dateMs, Math.min(startedAtMs, state.nowMs)) : current.dateMs;
  const next = series.firstAfter(coveredUntilMs);
  if (!(next <= untilMs)) return null;
  if (runAt(next) > state.nowMs) return { dateMs: runAt(next) };

  // `next` should have run already: dates were missed.
  const latest = series.latestAtOrBefore(Math.min(state.nowMs, untilMs));
  if (repeat.misfire === 'run_once') {
    // Run once for the latest date missed (one whose run date has passed), unless `until` fell
    // before even the first of them.
    if (latest < next) return null;
    const latestMissed = runAt(latest) <= state.nowMs ? latest : series.latestAtOrBefore(latest - 1);
    return { dateMs: runAt(Math.max(latestMissed, next)) };
  }
  // skip: the first date whose run is still ahead (a jittered one may be a little behind now).
  const firstFuture = latest >= next && runAt(latest) > state.nowMs ? latest : series.firstAfter(state.nowMs);
  return firstFuture <= untilMs ? { dateMs: runAt(firstFuture) } : null;
}

/**
 * The first run of a series from `fromMs` on (`after task add --cron` without a date): the
 * first series date at or after it (a cron fire time plus the delay), moved by its jitter
 * offset. Null when the series has no date left.
 */
export function firstRunDate(repeat: Repeat, taskId: string | undefined, fromMs: number): number | null {
  const untilMs = Math.min(repeat.untilMs ?? MAX_DATE_MS, MAX_DATE_MS);
  const first = seriesOf(repeat, fromMs).firstAfter(fromMs - 1);
  return first <= untilMs ? runDates(repeat, taskId, untilMs)(first) : null;
}

/**
 * The offset of series date `seriesDateMs` of task `taskId` within a jitter window: a stable
 * hash of both, in whole milliseconds in [0, jitterMs). The same in every process.
 */
export function jitterOffsetMs(taskId: string, seriesDateMs: number, jitterMs: number): number {
  if (!(jitterMs > 0)) return 0;
  return Math.floor(stableFraction(`${taskId}\u0000${new Date(seriesDateMs).toISOString()}`) * jitterMs);
}

/** Where each series date runs: moved by its jitter offset, never past `until` nor the last date. */
function runDates(repeat: Repeat, taskId: string | undefined, untilMs: number): (seriesDateMs: number) => number {
  const jitterMs = repeat.jitterMs ?? 0;
  if (!(jitterMs > 0) || taskId === undefined) return (ms) => ms;
  return (ms) => (Number.isFinite(ms) ? Math.min(ms + jitterOffsetMs(taskId, ms, jitterMs), Math.max(ms, untilMs)) : ms);
}

/**
 * The series date a run date stands for: the series date S within a jitter before `dateMs` whose
 * run date is exactly `dateMs`; else `dateMs` itself (a date the user or a retry set).
 */
function seriesDateOf(series: Series, runAt: (ms: number) => number, dateMs: number, jitterMs: number): { dateMs: number; offsetMs: number } {
  if (jitterMs > 0) {
    // The jitter is shorter than the series' gaps, so one or two dates at most are this close.
    let candidate = series.latestAtOrBefore(dateMs);
    for (let tries = 0; tries < 3 && candidate > dateMs - jitterMs; tries++) {
      if (runAt(candidate) === dateMs) return { dateMs: candidate, offsetMs: dateMs - candidate };
      candidate = series.latestAtOrBefore(candidate - 1);
    }
  }
  return { dateMs, offsetMs: 0 };
}

function seriesOf(repeat: Repeat, anchorMs: number): Series {
  return repeat.kind === 'cron' ? new CronSeries(repeat) : new IntervalSeries(anchorMs, repeat.every, repeat.timezone);
}

/**
 * The dates of a series, as epoch ms. Where there is no such date, +Infinity (none after)
 * or -Infinity (none before), so comparisons with `until` and `now` need no special case.
 */
interface Series {
  firstAfter(ms: number): number;
  latestAtOrBefore(ms: number): number;
}

/** The fire times of a cron pattern, as croner computes them, each moved by the repeat's delay. */
class CronSeries implements Series {
  private readonly delayMs: number;
  constructor(private readonly repeat: CronRepeat) {
    this.delayMs = repeat.delayMs ?? 0;
  }

  firstAfter(ms: number): number {
    const fire = cronFireAfter(this.repeat.pattern, this.repeat.timezone, ms - this.delayMs);
    return fire === null || fire + this.delayMs > MAX_DATE_MS ? Infinity : fire + this.delayMs;
  }

  latestAtOrBefore(ms: number): number {
    const fire = cronFireAtOrBefore(this.repeat.pattern, this.repeat.timezone, ms - this.delayMs);
    return fire === null ? -Infinity : fire + this.delayMs;
  }
}

/**
 * The series `anchor + k × every` for k = 0, 1, 2... (in `timezone`'s calendar when given):
 * strictly increasing in k, since every interval is longer than zero. Dates past the range
 * of a Date count as +Infinity.
 */
class IntervalSeries implements Series {
  private readonly approxStepMs: number;
  constructor(
    private readonly anchorMs: number,
    private readonly every: Duration,
    private readonly timezone?: string,
  ) {
    this.approxStepMs = approximateMs(every);
  }

  firstAfter(ms: number): number {
    return this.at(this.firstIndexAfter(ms));
  }

  latestAtOrBefore(ms: number): number {
    return this.at(this.firstIndexAfter(ms) - 1);
  }

  at(k: number): number {
    if (k < 0) return -Infinity;
    const ms = addDuration(this.anchorMs, this.every, k, this.timezone);
    return Number.isNaN(ms) ? Infinity : ms;
  }

  /**
   * The smallest k ≥ 0 whose date is after `ms`. k is estimated from the mean interval, then
   * bracketed by doubling steps and narrowed by bisection: a few dozen date computations even
   * for a 1 ms repeat anchored years ago.
   */
  firstIndexAfter(ms: number): number {
    if (this.at(0) > ms) return 0;
    const estimate = Math.max(0, Math.floor((ms - this.anchorMs) / this.approxStepMs));
    // Bracket so that at(low) <= ms < at(high), doubling the step away from the estimate.
    let low: number;
    let high: number;
    let step = 1;
    if (this.at(estimate) <= ms) {
      while (this.at(estimate + step) <= ms) step *= 2;
      low = estimate + Math.floor(step / 2);
      high = estimate + step;
    } else {
      while (estimate - step > 0 && this.at(estimate - step) > ms) step *= 2;
      low = Math.max(0, estimate - step);
      high = estimate - Math.floor(step / 2);
    }
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (this.at(middle) <= ms) low = middle;
      else high = middle;
    }
    return high;
  }
}

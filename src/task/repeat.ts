/**
 * `repeat`: what a task document may carry, parsed once into a Repeat. The dates a parsed repeat
 * leads to are computed in series.ts, whose header states the rules (the README repeats them).
 */
import { checkCronPattern, cronShortestGapMs } from './cron';
import { parseTaskDate, quoteValue } from './dates';
import { Duration, parseDuration, parseFixedDurationMs, shortestMs } from './duration';
import { parseTimeZone } from './zones';

export type Misfire = 'run_once' | 'skip';
const MISFIRES: readonly Misfire[] = ['run_once', 'skip'];

/** What every kind of repeat carries beside its dates. */
interface SeriesLimits {
  /** Total successful runs of the series. */
  limit?: number;
  /** No run is scheduled after this instant (epoch ms). */
  untilMs?: number;
  misfire: Misfire;
  /** Each series date runs up to this much later, at a stable offset per (task, date). @default 0 */
  jitterMs?: number;
}

/** A repeat every fixed calendar interval, anchored at the series' first date. */
export interface IntervalRepeat extends SeriesLimits {
  kind: 'interval';
  every: Duration;
  /** IANA zone whose calendar the years, months, weeks and days follow; absent = UTC. */
  timezone?: string;
}

/** A repeat on the fire times of a cron pattern, read in `timezone`. */
export interface CronRepeat extends SeriesLimits {
  kind: 'cron';
  pattern: string;
  /** IANA zone the pattern is read in; `UTC` when the repeat names none. */
  timezone: string;
  /** The series' dates are the fire times plus this. @default 0 */
  delayMs?: number;
}

/** A parsed `repeat`. */
export type Repeat = IntervalRepeat | CronRepeat;

export type RepeatParse = { ok: true; repeat: Repeat } | { ok: false; message: string };

/** Keys a repeat object may carry beside its duration keys (or its `cron`). */
const REPEAT_OPTION_KEYS = ['limit', 'until', 'timezone', 'misfire', 'jitter'];
const CRON_KEYS = ['cron', 'delay', ...REPEAT_OPTION_KEYS];

const REPEAT_EXPECTED = 'expected a duration object like {"days": 1}, an ISO 8601 duration like "P1D", or {"cron": "0 9 * * 1-5"}';

/** Parse `repeat`. Never throws. */
export function parseRepeat(value: unknown): RepeatParse {
  if (typeof value === 'string') {
    const parsed = parseDuration(value, 'repeat');
    return parsed.ok ? { ok: true, repeat: { kind: 'interval', every: parsed.duration, misfire: 'run_once' } } : parsed;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: `repeat: ${quoteValue(value)} is not a repeat (${REPEAT_EXPECTED})` };
  }
  const spec = value as Record<string, unknown>;
  const limits = parseSeriesLimits(spec);
  if (!limits.ok) return limits;
  let timezone: string | undefined;
  if (Object.hasOwn(spec, 'timezone')) {
    const zone = parseTimeZone(spec.timezone, 'repeat.timezone');
    if (!zone.ok) return zone;
    timezone = zone.zone;
  }
  return Object.hasOwn(spec, 'cron')
    ? parseCronRepeat(spec, limits.limits, timezone)
    : parseIntervalRepeat(spec, limits.limits, timezone);
}

function parseCronRepeat(spec: Record<string, unknown>, limits: SeriesLimits, timezone: string | undefined): RepeatParse {
  // A duration key beside `cron` (or a typo) would be silently ignored: name it instead.
  const otherKey = Object.keys(spec).find((key) => !CRON_KEYS.includes(key));
  if (otherKey !== undefined) {
    return { ok: false, message: `repeat: unknown key ${quoteValue(otherKey)} beside cron (expected ${CRON_KEYS.join(', ')})` };
  }
  const zone = timezone ?? 'UTC';
  const checked = checkCronPattern(spec.cron, zone, 'repeat.cron');
  if (!checked.ok) return checked;
  const repeat: CronRepeat = { kind: 'cron', pattern: spec.cron as string, timezone: zone, ...limits };
  if (Object.hasOwn(spec, 'delay')) {
    const delay = parseFixedDurationMs(spec.delay, 'repeat.delay');
    if (!delay.ok) return delay;
    if (delay.ms > 0) repeat.delayMs = delay.ms;
  }
  const jitter = checkJitter(spec, limits, cronShortestGapMs(repeat.pattern, zone));
  return jitter.ok ? { ok: true, repeat } : jitter;
}

function parseIntervalRepeat(spec: Record<string, unknown>, limits: SeriesLimits, timezone: string | undefined): RepeatParse {
  if (Object.hasOwn(spec, 'delay')) {
    return {
      ok: false,
      message: 'repeat.delay: only a cron repeat takes a delay (an interval repeat runs at its date and every interval after it: move its date instead)',
    };
  }
  const every = parseDuration(spec, 'repeat', { ignoreKeys: REPEAT_OPTION_KEYS });
  if (!every.ok) return every;
  const repeat: IntervalRepeat = { kind: 'interval', every: every.duration, ...limits };
  if (timezone !== undefined) repeat.timezone = timezone;
  const jitter = checkJitter(spec, limits, shortestMs(every.duration, timezone));
  return jitter.ok ? { ok: true, repeat } : jitter;
}

/** A jitter must stay below the shortest gap between two series dates, or a run could pass the next date. */
function checkJitter(spec: Record<string, unknown>, limits: SeriesLimits, shortestGapMs: number): { ok: true } | { ok: false; message: string } {
  if (limits.jitterMs === undefined || !(limits.jitterMs >= shortestGapMs)) return { ok: true };
  return {
    ok: false,
    message:
      `repeat.jitter: ${quoteValue(spec.jitter)} is not shorter than the shortest time between two dates of this repeat ` +
      `(${describeGap(shortestGapMs)}): a run could move past the next date`,
  };
}

function describeGap(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]];
  for (const [name, size] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${name}`;
  return `${ms} ms`;
}

/** `limit`, `until` and `misfire`, shared by every kind of repeat. */
function parseSeriesLimits(spec: Record<string, unknown>): { ok: true; limits: SeriesLimits } | { ok: false; message: string } {
  const limits: SeriesLimits = { misfire: 'run_once' };
  if (Object.hasOwn(spec, 'limit')) {
    const limit = spec.limit;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
      return { ok: false, message: `repeat.limit: ${quoteValue(limit)} is not a positive integer (the total number of runs)` };
    }
    limits.limit = limit;
  }
  if (Object.hasOwn(spec, 'until')) {
    const until = parseTaskDate(spec.until);
    if (!until.ok) return { ok: false, message: `repeat.until: ${until.message}` };
    limits.untilMs = until.ms;
  }
  if (Object.hasOwn(spec, 'misfire')) {
    const misfire = MISFIRES.find((name) => name === spec.misfire);
    if (misfire === undefined) {
      return { ok: false, message: `repeat.misfire: ${quoteValue(spec.misfire)} is not "run_once" or "skip"` };
    }
    limits.misfire = misfire;
  }
  if (Object.hasOwn(spec, 'jitter')) {
    const jitter = parseFixedDurationMs(spec.jitter, 'repeat.jitter');
    if (!jitter.ok) return jitter;
    if (jitter.ms > 0) limits.jitterMs = jitter.ms;
  }
  return { ok: true, limits };
}

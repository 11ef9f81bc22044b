/** `retry`: parsing, and how long a failed run waits before the next try. */
import { MAX_DATE_MS, quoteValue } from './dates';
import { Duration, durationToMs, parseDuration } from './duration';

/** A parsed `retry`: after the n-th failure in a row (0-based), wait `delay × backoff^n`. */
export interface Retry {
  /** Retries after failures in a row; 0 never retries. */
  limit: number;
  delay: Duration;
  backoff: number;
}

export type RetryParse = { ok: true; retry: Retry } | { ok: false; message: string };

const RETRY_KEYS = ['limit', 'delay', 'backoff'];
const DEFAULT_RETRY_DELAY: Duration = {
  years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 0, milliseconds: 1000,
};


/** Parse `retry`: `{limit, delay?, backoff?}`. Never throws. */
export function parseRetry(value: unknown): RetryParse {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: `retry: ${quoteValue(value)} is not a retry (expected e.g. {"limit": 3, "delay": "PT1M", "backoff": 2})` };
  }
  const spec = value as Record<string, unknown>;
  // A typo (`"dealy"`) would silently fall back to a default: name it instead.
  const unknownKey = Object.keys(spec).find((key) => !RETRY_KEYS.includes(key));
  if (unknownKey !== undefined) {
    return { ok: false, message: `retry: unknown key ${quoteValue(unknownKey)} (expected limit, delay, backoff)` };
  }
  const limit = spec.limit;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    return { ok: false, message: `retry.limit: ${quoteValue(limit)} is not an integer >= 0 (the number of retries)` };
  }
  let delay = DEFAULT_RETRY_DELAY;
  if (spec.delay !== undefined) {
    const parsed = parseDuration(spec.delay, 'retry.delay', { allowZero: true });
    if (!parsed.ok) return parsed;
    delay = parsed.duration;
  }
  let backoff = 1;
  if (spec.backoff !== undefined) {
    if (typeof spec.backoff !== 'number' || !Number.isFinite(spec.backoff) || spec.backoff < 1) {
      return { ok: false, message: `retry.backoff: ${quoteValue(spec.backoff)} is not a number >= 1` };
    }
    backoff = spec.backoff;
  }
  return { ok: true, retry: { limit, delay: { ...delay }, backoff } };
}

/**
 * Milliseconds from `fromMs` to the next retry: `delay × backoff^n`, n = failures in a row
 * before this one (0-based). Capped so the retry date stays a date a task may carry.
 */
export function retryDelayMs(retry: Retry, failuresSoFar: number, fromMs: number): number {
  if (!Number.isFinite(fromMs)) return 0;
  const roomMs = Math.max(0, MAX_DATE_MS - fromMs);
  const n = Number.isFinite(failuresSoFar) ? Math.max(0, Math.floor(failuresSoFar)) : 0;
  const delayMs = durationToMs(retry.delay, fromMs) * retry.backoff ** n;
  return Number.isFinite(delayMs) && delayMs <= roomMs ? Math.round(delayMs) : roomMs;
}

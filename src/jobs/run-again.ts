/**
 * Jobs that decide their next run (Periodic's `schedLater`, PerfectSched's `retry!` and
 * `release!`). A job ends its run with one of
 *
 *   return ctx.later(delay, result?)   // a success; run again after `delay`, whatever the repeat says
 *   return ctx.retry(delay, reason?)   // a failure; retried after `delay`, counted in `retries`
 *   return ctx.release(delay?)         // handed back; run again after `delay`, nothing counted
 *
 * or, in the EventEmitter form, `task.emit('later', delay, result?)`, `task.emit('retry', delay,
 * reason?)`, `task.emit('release', delay?)`. A delay is milliseconds (a number), a duration
 * (`"5m"`, `"1h30m"`, `"PT5M"`, `{"minutes": 5}`) or a date (a Date, or an ISO 8601 string):
 * the next run is that long after the run ends, or at that date. A delay that is none of these,
 * or negative, fails the run with E_RUN_AGAIN naming the value.
 *
 * `ctx.later(...)` only builds a value: what the job returns (or emits) decides, so a job that
 * builds one and then throws has failed.
 */
import { AfterError, toTaskError } from '../errors';
import { parseTaskDate, quoteValue } from '../task/dates';
import { durationToMs, parseCompactDuration, parseDuration } from '../task/duration';
import type { RunAgain, RunOutcome, TaskError } from '../types';

export type RunAgainKind = 'later' | 'retry' | 'release';
export const RUN_AGAIN_KINDS: readonly RunAgainKind[] = ['later', 'retry', 'release'];

/** A delay as a job may give it: ms, a duration (string or object), or a date. */
export type Delay = number | string | Date | Record<string, number>;

/** `release()` without a delay: run again after this long, so a job that always releases cannot spin. */
export const DEFAULT_RELEASE_DELAY_MS = 1000;

/** What `ctx.later()`, `ctx.retry()` and `ctx.release()` return: the job hands it back as its end. */
export class RunAgainRequest {
  constructor(
    readonly kind: RunAgainKind,
    readonly delay: unknown,
    /** later: the result to store; retry: why (a message or an Error). */
    readonly detail?: unknown,
  ) {}
}

export function isRunAgainRequest(value: unknown): value is RunAgainRequest {
  return value instanceof RunAgainRequest;
}

/** The three builders a job's `ctx` carries. */
export interface RunAgainBuilders {
  /** Success; run again after `delay` (ms, "5m", "PT5M", {"minutes": 5}, or a date), whatever the repeat says. */
  later(delay: Delay, result?: unknown): RunAgainRequest;
  /** Failure; run again after `delay` even with no retry policy; counted in `retries`. */
  retry(delay: Delay, reason?: string | Error): RunAgainRequest;
  /** Hand the task back; run again after `delay` (default 1 s); no run and no failure counted. */
  release(delay?: Delay): RunAgainRequest;
}

export const runAgainBuilders: RunAgainBuilders = Object.freeze({
  later: (delay: Delay, result?: unknown) => new RunAgainRequest('later', delay, result),
  retry: (delay: Delay, reason?: string | Error) => new RunAgainRequest('retry', delay, reason),
  release: (delay?: Delay) => new RunAgainRequest('release', delay === undefined ? DEFAULT_RELEASE_DELAY_MS : delay),
});

export type DelayParse = { ok: true; when: RunAgain } | { ok: false; message: string };

const EXPECTED = 'expected milliseconds (a number >= 0), a duration such as "5m", "1h30m", "PT5M" or {"minutes": 5}, or a date';

/**
 * A job's delay as the run's next date: `delayMs` after the run ends, or `atMs`. `nowMs` is
 * when the delay is read (a duration in months is as long as the months from then).
 */
export function parseDelay(value: unknown, field: string, nowMs: number): DelayParse {
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isFinite(ms) ? { ok: true, when: { atMs: ms } } : { ok: false, message: `${field}: an invalid Date (${EXPECTED})` };
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return { ok: false, message: `${field}: ${quoteValue(value)} is not a delay (${EXPECTED})` };
    return { ok: true, when: { delayMs: value } };
  }
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^-/.test(text)) return { ok: false, message: `${field}: ${quoteValue(value)} is negative (${EXPECTED})` };
    const compact = parseCompactDuration(text, field);
    if (compact.ok) return { ok: true, when: { delayMs: durationToMs(compact.duration, nowMs) } };
    if (text.startsWith('P')) {
      const iso = parseDuration(text, field, { allowZero: true });
      if (iso.ok) return { ok: true, when: { delayMs: durationToMs(iso.duration, nowMs) } };
    }
    const date = parseTaskDate(text);
    if (date.ok) return { ok: true, when: { atMs: date.ms } };
    return { ok: false, message: `${field}: ${quoteValue(value)} is not a delay (${EXPECTED})` };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const parsed = parseDuration(value, field, { allowZero: true });
    if (parsed.ok) return { ok: true, when: { delayMs: durationToMs(parsed.duration, nowMs) } };
    return { ok: false, message: parsed.message };
  }
  return { ok: false, message: `${field}: ${quoteValue(value)} is not a delay (${EXPECTED})` };
}

/**
 * The outcome of a run that ended with a request to run again; a bad delay fails the run.
 * `storable` turns a `later` result into what will be stored (or a failure when it cannot be).
 */
export function runAgainOutcome(request: RunAgainRequest, nowMs: number, storable: (value: unknown) => RunOutcome): RunOutcome {
  const parsed = parseDelay(request.delay, `${request.kind === 'later' ? 'ctx.later' : request.kind === 'retry' ? 'ctx.retry' : 'ctx.release'}(delay)`, nowMs);
  if (!parsed.ok) return { kind: 'failure', error: toTaskError(new AfterError('E_RUN_AGAIN', parsed.message)) };
  const { when } = parsed;
  switch (request.kind) {
    case 'later': {
      const stored = storable(request.detail);
      return stored.kind === 'success' ? { kind: 'later', result: stored.result, when } : stored;
    }
    case 'retry':
      return { kind: 'retry', error: retryReason(request.detail), when };
    case 'release':
      return { kind: 'release', when };
  }
}

function retryReason(detail: unknown): TaskError {
  if (detail === undefined || detail === null || detail === '') return { message: 'the job asked to be retried', code: 'E_RETRY' };
  if (typeof detail === 'string') return { message: detail, code: 'E_RETRY' };
  const error = toTaskError(detail);
  return error.code === undefined ? { ...error, code: 'E_RETRY' } : error;
}

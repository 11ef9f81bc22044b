/**
 * What is written to a task document after a run: the one place that decides it, used by
 * every code path that finishes, cancels or rejects a task. Pure: the caller passes the
 * run's times and writes the returned document with its `_rev` (one write per run, which
 * keeps revisions few — docs/spec.md §7 "Growth").
 *
 * The returned document is new; the input is never mutated, and `_id`, `_rev` and every
 * field the worker does not own are kept as they are.
 *
 * | outcome   | counts                      | status after                                      |
 * |-----------|-----------------------------|---------------------------------------------------|
 * | success   | executions (+ repetitions)  | done, or waiting at the repeat's next date        |
 * | failure   | executions (+ retries)      | error, or waiting at the retry's date             |
 * | canceled  | executions if it started    | canceled                                          |
 * | later     | executions                  | waiting at the date the job chose (a success)     |
 * | retry     | executions, retries         | waiting at the date the job chose (a failure)     |
 * | release   | nothing                     | waiting at the date the job chose, as if not run  |
 *
 * A run made for a user's `run_now` before the task's date (an extra run) removes `run_now`;
 * a repeating task then keeps its `date` (success or failure: the series neither moves nor
 * ends, and no repetition is counted), a one-shot task ends as its run did.
 *
 * No run comes sooner than `worker.min_repeat_ms` after the last one ended: a retry's
 * `delay × backoff^n`, and the delay or date a job asks for (`later`, `retry`, `release`, and
 * the `run_now` a released extra run writes), are raised to it (`earliestNextRunMs`). A `repeat`
 * shorter than it is refused by validate.ts instead; its dates stay on the series' grid.
 * Before issue 19 a task with `"retry": {"delay": 0}` whose job failed at once re-ran as fast as
 * the database answered (202 runs in 27 s), and so did a job returning `ctx.release(0)`.
 *
 * Nor does a run make the task larger than `worker.max_task_size`: a result that would is not
 * stored, and the run counts as failed (E_TASK_TOO_LARGE), so the worker never writes a document
 * the embedded server would refuse (413) or that it would itself refuse when it next reads it.
 */
import type { HistoryEntry, LastRun, RunAgain, RunOutcome, TaskDoc, TaskError } from '../types';
import { formatDate, MAX_DATE_MS, parseTaskDate } from './dates';
import { retryDelayMs } from './retry';
import { measureForWrite } from './document-size';
import { nextRepeat } from './series';
import { DEFAULT_MAX_TASK_BYTES, DEFAULT_MIN_REPEAT_MS, type ParsedTask } from './validate';

export interface RunRecord {
  /** When the job was started; a non-finite value means it never started. */
  startedAtMs: number;
  finishedAtMs: number;
  worker: string;
  instance: string;
}

export interface NextStateOptions {
  /** Runs kept in `history`, newest first; 0 keeps none. */
  historyLimit: number;
}

export function nextState(
  doc: TaskDoc,
  task: ParsedTask,
  outcome: RunOutcome,
  run: RunRecord,
  options: NextStateOptions,
): TaskDoc {
  const next = stateAfter(doc, task, outcome, run, options);
  if (outcome.kind !== 'success' && outcome.kind !== 'later') return next;
  const size = measureForWrite(next);
  const maxTaskBytes = task.maxTaskBytes ?? DEFAULT_MAX_TASK_BYTES;
  if (size !== 'unserialisable' && size <= maxTaskBytes) return next;
  const message =
    `the job's result would make the task ${size === 'unserialisable' ? 'impossible to write' : `${size} bytes`}, ` +
    `more than the ${maxTaskBytes} a task may have (worker.max_task_size); write large output elsewhere and return a reference to it`;
  return stateAfter(doc, task, { kind: 'failure', error: { message, code: 'E_TASK_TOO_LARGE' } }, run, options);
}

function stateAfter(doc: TaskDoc, task: ParsedTask, outcome: RunOutcome, run: RunRecord, options: NextStateOptions): TaskDoc {
  const next = withoutLease(doc);
  const extra = isExtraRun(task);
  // The run answered the user's run now: the request is done (one written during the run stays).
  if (task.runNowMs !== undefined && next.run_now === task.doc.run_now) delete next.run_now;

  if (outcome.kind === 'canceled') {
    if (Number.isFinite(run.startedAtMs)) {
      next.executions = counter(doc.executions) + 1;
      next.last_run = lastRun(run);
    }
    next.status = 'canceled';
    return next;
  }

  if (outcome.kind === 'release') {
    // Handed back: no run and no failure counted, the same run again later. An extra run keeps
    // the series' date and asks again through `run_now`.
    const againMs = runAgainAtMs(outcome.when, run.finishedAtMs, task);
    if (extra) next.run_now = formatDate(againMs);
    else {
      keepAnchor(next, doc, task);
      next.date = formatDate(againMs);
    }
    next.status = 'waiting';
    return next;
  }

  next.executions = counter(doc.executions) + 1;
  next.last_run = lastRun(run);

  if (outcome.kind === 'success' || outcome.kind === 'later') {
    if (outcome.result === undefined) delete next.result;
    else next.result = outcome.result;
    if ('error' in next) delete next.error;
    next.retries = 0;
    recordHistory(next, doc, { ...next.last_run, status: 'done' }, options.historyLimit);

    if (outcome.kind === 'later') {
      // The job chose its next run, whatever the repeat says; an interval series keeps its anchor.
      keepAnchor(next, doc, task);
      next.status = 'waiting';
      next.date = formatDate(runAgainAtMs(outcome.when, run.finishedAtMs, task));
      return next;
    }
    if (task.repeatParsed && extra) {
      // One run more than the series has: its next date stays, and it counts no repetition.
      next.status = 'waiting';
      return next;
    }
    if (task.repeatParsed) {
      const repetitions = counter(doc.repetitions) + 1;
      next.repetitions = repetitions;
      const following = nextRepeat(task.repeatParsed, {
        anchorMs: anchorMs(doc, task),
        dateMs: task.dateMs,
        startedAtMs: run.startedAtMs,
        repetitions,
        nowMs: run.finishedAtMs,
        taskId: doc._id,
      });
      if (following) {
        keepAnchor(next, doc, task);
        next.status = 'waiting';
        next.date = formatDate(following.dateMs);
        return next;
      }
    }
    next.status = 'done';
    return next;
  }

  const error: TaskError = { message: outcome.error.message };
  if (outcome.error.code !== undefined) error.code = outcome.error.code;
  next.error = error;
  recordHistory(next, doc, { ...next.last_run, status: 'error', error }, options.historyLimit);

  const retriesSoFar = counter(doc.retries);
  if (outcome.kind === 'retry') {
    // The job asked for it: retried whatever the retry policy says, and counted.
    keepAnchor(next, doc, task);
    next.status = 'waiting';
    next.date = formatDate(runAgainAtMs(outcome.when, run.finishedAtMs, task));
    next.retries = retriesSoFar + 1;
    return next;
  }
  if (task.repeatParsed && extra) {
    // A failed extra run neither ends the series nor moves it: the failure is recorded, the
    // next run is the series' own date.
    next.status = 'waiting';
    return next;
  }
  if (task.retryParsed && retriesSoFar < task.retryParsed.limit) {
    // A retry moves `date`; the series must still count from its first date.
    keepAnchor(next, doc, task);
    next.status = 'waiting';
    const retryAtMs = run.finishedAtMs + retryDelayMs(task.retryParsed, retriesSoFar, run.finishedAtMs);
    next.date = formatDate(Math.max(retryAtMs, earliestNextRunMs(run.finishedAtMs, task)));
    next.retries = retriesSoFar + 1;
    return next;
  }
  // A repeat runs again after each success only: a failure with no retry left ends here.
  next.status = 'error';
  return next;
}

/**
 * The run was one a user asked for before the task's date (`run_now`): one run more than the
 * task's own, which leaves a repeat's `date` where it was.
 */
export function isExtraRun(task: ParsedTask): boolean {
  return task.runNowMs !== undefined && task.runNowMs < task.dateMs;
}

/**
 * When a job asked to run again: its delay after the run's end, or its date, but never sooner
 * than the task's minimum after the run's end.
 */
export function runAgainAtMs(when: RunAgain, finishedAtMs: number, task: Pick<ParsedTask, 'minRepeatMs'>): number {
  const ms = 'atMs' in when ? when.atMs : finishedAtMs + when.delayMs;
  // A date past 9999-12-31 cannot be written as a task date.
  return Math.min(Math.max(ms, earliestNextRunMs(finishedAtMs, task)), MAX_DATE_MS);
}

/** The soonest the worker may set a task's next run, for a run that ended at `finishedAtMs`. */
export function earliestNextRunMs(finishedAtMs: number, task: Pick<ParsedTask, 'minRepeatMs'>): number {
  return Math.min(finishedAtMs + (task.minRepeatMs ?? DEFAULT_MIN_REPEAT_MS), MAX_DATE_MS);
}

/** A task that failed validation: `error.message` names the field and the value. */
export function invalidState(doc: TaskDoc, field: string, message: string): TaskDoc {
  const next = withoutLease(doc);
  next.status = 'error';
  const namesField = message.startsWith(`${field}:`) || message.startsWith(`${field}.`);
  next.error = { message: namesField ? message : `${field}: ${message}`, code: 'E_TASK_INVALID' };
  return next;
}

/** A user's `cancel` acknowledged (no run started). */
export function canceledState(doc: TaskDoc): TaskDoc {
  const next = withoutLease(doc);
  next.status = 'canceled';
  return next;
}

/**
 * A copy of the document without its lease, every write that gives a lease up starts from. Left
 * out of the copy rather than deleted from it: V8 turns an object a property was deleted from
 * into a slow dictionary, and a written document is serialised at least once more (the finish
 * document for its size here, a text its write's body then reuses: document-size.ts).
 */
export function withoutLease(doc: TaskDoc): TaskDoc {
  const { lease: _lease, ...rest } = doc;
  return rest as TaskDoc;
}

function lastRun(run: RunRecord): LastRun {
  const startedAtMs = Number.isFinite(run.startedAtMs) ? run.startedAtMs : run.finishedAtMs;
  return {
    started_at: formatDate(startedAtMs),
    finished_at: formatDate(run.finishedAtMs),
    duration_ms: Math.max(0, run.finishedAtMs - startedAtMs),
    worker: run.worker,
    instance: run.instance,
  };
}

/** Newest first, at most `limit` entries; entries a user mangled are kept as they are. */
function recordHistory(next: TaskDoc, doc: TaskDoc, entry: HistoryEntry, limit: number): void {
  const kept = Math.max(0, Math.floor(limit));
  if (!(kept > 0)) {
    delete next.history;
    return;
  }
  const earlier = Array.isArray(doc.history) ? doc.history : [];
  next.history = [entry, ...earlier.slice(0, kept - 1)];
}

/** The series' first date: `anchor_date` when it is a valid date, else the current date. */
function anchorMs(doc: TaskDoc, task: ParsedTask): number {
  const anchor = doc.anchor_date === undefined ? undefined : parseTaskDate(doc.anchor_date);
  return anchor?.ok ? anchor.ms : task.dateMs;
}

/**
 * Before the worker first moves `date`, remember where an interval series started. A cron
 * series has no anchor (its pattern names the dates), so it gets no `anchor_date`.
 */
function keepAnchor(next: TaskDoc, doc: TaskDoc, task: ParsedTask): void {
  if (task.repeatParsed?.kind !== 'interval') return;
  if (!parseTaskDate(doc.anchor_date).ok) next.anchor_date = doc.date;
}

/** A counter as found in the document: a user may have written anything there. */
function counter(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

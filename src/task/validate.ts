/**
 * The check every task document passes before a worker schedules it. A document is
 * untrusted JSON that anyone with access to the database may have written, so this never
 * throws: it returns the first field that is wrong, with a message naming the field and
 * the value, which the worker stores as the task's `error.message`.
 *
 * User payloads (`data`, `job.arguments`, `result`, unknown fields) are passed along untouched
 * and never walked key by key: the document's size is measured with one native serialisation
 * (document-size.ts) and held to `worker.max_task_size`.
 */
import { AFTER_FAILURES, JobSpec, RepeatSpec, RetrySpec, Status, STATUSES, TaskDoc, ValidTask } from '../types';
import { parseTaskDate, quoteValue } from './dates';
import { cronShortestGapMs } from './cron';
import { documentBytes } from './document-size';
import { approximateMs } from './duration';
import { parseRepeat, Repeat } from './repeat';
import { parseRetry, Retry } from './retry';

/** A valid task with its `repeat` and `retry` parsed, as nextState needs them. */
export interface ParsedTask extends ValidTask {
  repeatParsed?: Repeat;
  retryParsed?: Retry;
  /**
   * The shortest time from the end of a run to the next run the worker may set (a retry, a
   * job's `ctx.later`/`retry`/`release`): `worker.min_repeat_ms` when the task was checked.
   * A `repeat` shorter than it is refused here; a run-again sooner than it is raised to it
   * (next-state.ts). @default DEFAULT_MIN_REPEAT_MS
   */
  minRepeatMs?: number;
  /**
   * The largest the document may be, in bytes of JSON (`worker.max_task_size` when the task was
   * checked): a larger one is refused here, and a run whose result would make it larger fails
   * (next-state.ts). @default DEFAULT_MAX_TASK_BYTES
   */
  maxTaskBytes?: number;
}

export type TaskValidation = { ok: true; task: ParsedTask } | { ok: false; field: string; message: string };

/** Longest worker or job name: names end up in logs, file names and index keys. */
const MAX_NAME_LENGTH = 200;
/**
 * The shortest repeat by default (`worker.min_repeat_ms`). A task that runs every few
 * milliseconds writes its document as fast as the database answers, so a user's cancel (a
 * write with the `_rev` read a moment ago) would keep losing to the worker's writes, and the
 * database grows by a revision per run.
 */
export const DEFAULT_MIN_REPEAT_MS = 1000;
/**
 * The floor under any configured minimum. The series search (nextRepeat) counts in whole steps
 * from the anchor: a step of a sub-millisecond fraction (`{"ms": 1e-20}`) needs more steps than
 * a double counts exactly, and the search never ends.
 */
export const MIN_REPEAT_FLOOR_MS = 1;
/**
 * The deepest nesting the embedded server takes in a document (guard-rules.ts): its map
 * functions and filters copy a document recursively and fail a few thousand levels down. The
 * worker itself refuses only what it could not serialise (document-size.ts).
 */
export const MAX_DOCUMENT_DEPTH = 100;
/**
 * `worker.max_task_size`'s default: the largest task document, in bytes of JSON. A document
 * costs the worker (and the embedded server, which answers everyone from one thread) about
 * 20 ms per megabyte each time it is parsed, serialised or copied, and a task is all three
 * several times on its way to a run; at 1 MB the tasks due beside it stay within 100 ms of
 * their dates (docs/performance.md). CouchDB's own limit is 8 MB (8,000,000 bytes).
 */
export const DEFAULT_MAX_TASK_BYTES = 1_000_000;

export interface ValidateOptions {
  /** Repeats shorter than this are refused. @default DEFAULT_MIN_REPEAT_MS */
  minRepeatMs?: number;
  /** Documents larger than this (bytes of JSON) are refused. @default DEFAULT_MAX_TASK_BYTES */
  maxTaskBytes?: number;
}
/** setTimeout's limit: a longer timeout would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/**
 * The most tasks one task may wait for (`after`). The worker reads each of them, and walks their
 * own `after` to find cycles; a fan-in wider than this is better split into stages.
 */
export const MAX_DEPENDENCIES = 100;
/** A task id as CouchDB allows it in a path: ids starting with `_` are its own documents. */
const MAX_ID_LENGTH = 1000;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

type Check<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

export function validateTask(doc: TaskDoc, options: ValidateOptions = {}): TaskValidation {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, field: 'document', message: `document: ${quoteValue(doc)} is not a JSON object` };
  }
  const maxTaskBytes = options.maxTaskBytes ?? DEFAULT_MAX_TASK_BYTES;
  const size = documentSizeProblem(doc, maxTaskBytes);
  if (size !== undefined) return { ok: false, field: 'document', message: size };
  const minRepeatMs = Math.max(MIN_REPEAT_FLOOR_MS, options.minRepeatMs ?? DEFAULT_MIN_REPEAT_MS);
  if (doc._id !== undefined && typeof doc._id !== 'string') {
    return { ok: false, field: '_id', message: `_id: ${quoteValue(doc._id)} is not a string` };
  }
  if (doc._id === '.' || doc._id === '..') {
    // Only _bulk_docs or a POST body can create it: no URL can name it afterwards.
    return { ok: false, field: '_id', message: `_id: ${quoteValue(doc._id)} cannot be addressed over HTTP (a URL resolves "." and ".." away), so no one could read, cancel or reschedule it` };
  }

  const worker = checkName(doc.worker, 'worker');
  if (!worker.ok) return worker;
  const date = parseTaskDate(doc.date);
  if (!date.ok) return { ok: false, field: 'date', message: `date: ${date.message}` };
  const job = checkJob(doc.job);
  if (!job.ok) return job;
  const status = checkStatus(doc.status);
  if (!status.ok) return status;

  const task: ParsedTask = {
    doc,
    id: doc._id ?? '',
    worker: worker.value,
    dateMs: date.ms,
    dueMs: date.ms,
    status: status.value,
    job: job.value,
    priority: 0,
    afterFailure: 'error',
    minRepeatMs,
    maxTaskBytes,
  };

  if (doc.repeat !== undefined) {
    const repeat = parseRepeat(doc.repeat);
    if (!repeat.ok) return { ok: false, field: 'repeat', message: repeat.message };
    const stepMs = repeatStepMs(repeat.repeat);
    if (!(stepMs >= minRepeatMs)) {
      return {
        ok: false,
        field: 'repeat',
        message: `repeat: ${quoteValue(doc.repeat)} repeats more often than every ${describeMs(minRepeatMs)}, the shortest repeat allowed (worker.min_repeat_ms)`,
      };
    }
    task.repeat = doc.repeat as RepeatSpec;
    task.repeatParsed = repeat.repeat;
  }
  if (doc.retry !== undefined) {
    const retry = parseRetry(doc.retry);
    if (!retry.ok) return { ok: false, field: 'retry', message: retry.message };
    task.retry = doc.retry as RetrySpec;
    task.retryParsed = retry.retry;
  }
  if (doc.timeout !== undefined) {
    const timeout = doc.timeout;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
      return {
        ok: false,
        field: 'timeout',
        message: `timeout: ${quoteValue(timeout)} is not a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`,
      };
    }
    task.timeoutMs = timeout;
  }
  if (doc.run_now !== undefined) {
    const runNow = parseTaskDate(doc.run_now);
    if (!runNow.ok) return { ok: false, field: 'run_now', message: `run_now: ${runNow.message}` };
    task.runNowMs = runNow.ms;
    task.dueMs = Math.min(date.ms, runNow.ms);
  }
  if (doc.priority !== undefined) {
    const priority = doc.priority;
    if (typeof priority !== 'number' || !Number.isSafeInteger(priority)) {
      return { ok: false, field: 'priority', message: `priority: ${quoteValue(priority)} is not an integer (higher runs first; the default is 0)` };
    }
    task.priority = priority;
  }
  if (doc.after !== undefined) {
    const after = checkAfter(doc.after, task.id);
    if (!after.ok) return after;
    if (after.value.length > 0) task.after = after.value;
  }
  if (doc.after_failure !== undefined) {
    const afterFailure = AFTER_FAILURES.find((name) => name === doc.after_failure);
    if (afterFailure === undefined) {
      return {
        ok: false,
        field: 'after_failure',
        message: `after_failure: ${quoteValue(doc.after_failure)} is not one of ${AFTER_FAILURES.map((name) => `"${name}"`).join(', ')}`,
      };
    }
    task.afterFailure = afterFailure;
  }
  return { ok: true, task };
}

/** `after`: the ids of the tasks this one waits for, each once, never its own. */
function checkAfter(value: unknown, ownId: string): Check<string[]> {
  const expected = 'expected an array of task ids, e.g. ["import-2026-11", "fx-rates"]';
  if (!Array.isArray(value)) return { ok: false, field: 'after', message: `after: ${quoteValue(value)} is not an array of task ids (${expected})` };
  if (value.length > MAX_DEPENDENCIES) {
    return { ok: false, field: 'after', message: `after: names ${value.length} tasks, more than ${MAX_DEPENDENCIES}` };
  }
  const ids: string[] = [];
  for (const [index, id] of value.entries()) {
    const problem =
      typeof id !== 'string'
        ? 'is not a task id (a string)'
        : (textProblem(id, MAX_ID_LENGTH) ?? (id.startsWith('_') ? 'starts with "_", which no task id does' : id === ownId ? 'is this task itself' : undefined));
    if (problem !== undefined) return { ok: false, field: 'after', message: `after[${index}]: ${quoteValue(id)} ${problem}` };
    if (!ids.includes(id as string)) ids.push(id as string);
  }
  return { ok: true, value: ids };
}

/** Why the document is too big (or too deep) to be a task, or undefined. */
export function documentSizeProblem(doc: object, maxTaskBytes: number): string | undefined {
  const size = documentBytes(doc);
  if (size === 'unserialisable') {
    return 'document: nested too deep to be written back as JSON (thousands of levels); a task has no use for such nesting';
  }
  if (size > maxTaskBytes) {
    return `document: ${size} bytes, more than the ${maxTaskBytes} a task may have (worker.max_task_size); keep large data elsewhere and put a reference to it in the task`;
  }
  return undefined;
}

/** The shortest time between two runs a repeat allows: an interval's step, a cron's closest dates. */
function repeatStepMs(repeat: Repeat): number {
  return repeat.kind === 'interval' ? approximateMs(repeat.every) : cronShortestGapMs(repeat.pattern, repeat.timezone);
}

function describeMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** What is wrong with the length of a name or an id: empty, or longer than `max`. */
function textProblem(text: string, max: number): string | undefined {
  if (text.length === 0) return 'is empty';
  return text.length > max ? `is longer than ${max} characters` : undefined;
}

/** A worker or job name: non-empty, bounded, printable (it reaches logs and file names). */
function checkName(value: unknown, field: string): Check<string> {
  const problem =
    typeof value !== 'string'
      ? 'is not a string'
      : (textProblem(value, MAX_NAME_LENGTH) ?? (CONTROL_CHARACTER.test(value) ? 'contains a control character' : undefined));
  if (problem !== undefined) return { ok: false, field, message: `${field}: ${quoteValue(value)} ${problem}` };
  return { ok: true, value: value as string };
}

/**
 * `job` in its long form `{name, arguments?}` or its short form `"name"` (whose input is
 * the document's `data`, left in the document). Both become `{name, arguments: [...]}`.
 * Whether the name resolves inside the jobs folder is the job loader's check.
 */
function checkJob(value: unknown): Check<JobSpec> {
  if (typeof value === 'string') {
    const name = checkName(value, 'job');
    return name.ok ? { ok: true, value: { name: name.value, arguments: [] } } : name;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      field: 'job',
      message: `job: ${quoteValue(value)} is not a job (expected {"name": "...", "arguments": [...]} or a job name)`,
    };
  }
  const spec = value as Record<string, unknown>;
  const name = checkName(Object.hasOwn(spec, 'name') ? spec.name : undefined, 'job.name');
  if (!name.ok) return { ...name, field: 'job' };
  const args = Object.hasOwn(spec, 'arguments') ? spec.arguments : undefined;
  if (args !== undefined && !Array.isArray(args)) {
    return { ok: false, field: 'job', message: `job.arguments: ${quoteValue(args)} is not an array` };
  }
  return { ok: true, value: { name: name.value, arguments: (args as unknown[] | undefined) ?? [] } };
}

function checkStatus(value: unknown): Check<Status> {
  if (value === undefined) return { ok: true, value: 'waiting' };
  const status = STATUSES.find((name) => name === value);
  if (status === undefined) {
    return { ok: false, field: 'status', message: `status: ${quoteValue(value)} is not one of ${STATUSES.join(', ')}` };
  }
  return { ok: true, value: status };
}

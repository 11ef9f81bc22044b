/**
 * The check every task document passes before a worker schedules it. A document is
 * untrusted JSON that anyone with access to the database may have written, so this never
 * throws: it returns the first field that is wrong, with a message naming the field and
 * the value, which the worker stores as the task's `error.message`.
 *
 * User payloads (`data`, `job.arguments`, unknown fields) are passed along untouched and
 * never walked, so their size and depth cannot matter here.
 */
import { JobSpec, RepeatSpec, RetrySpec, Status, STATUSES, TaskDoc, ValidTask } from '../types';
import { parseTaskDate, quoteValue } from './dates';
import { approximateMs } from './duration';
import { parseRepeat, parseRetry, Repeat, Retry } from './repeat';

/** A valid task with its `repeat` and `retry` parsed, as nextState needs them. */
export interface ParsedTask extends ValidTask {
  repeatParsed?: Repeat;
  retryParsed?: Retry;
}

export type TaskValidation = { ok: true; task: ParsedTask } | { ok: false; field: string; message: string };

/** Longest worker or job name: names end up in logs, file names and index keys. */
const MAX_NAME_LENGTH = 200;
/**
 * The shortest interval repeat. The series search (nextRepeat) counts in whole steps from the
 * anchor: a step of a sub-millisecond fraction (`{"ms": 1e-20}`) needs more steps than a
 * double counts exactly, and the search never ends.
 */
const MIN_REPEAT_MS = 1;
/** setTimeout's limit: a longer timeout would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

type Check<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

export function validateTask(doc: TaskDoc): TaskValidation {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, field: 'document', message: `document: ${quoteValue(doc)} is not a JSON object` };
  }
  if (doc._id !== undefined && typeof doc._id !== 'string') {
    return { ok: false, field: '_id', message: `_id: ${quoteValue(doc._id)} is not a string` };
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
    status: status.value,
    job: job.value,
  };

  if (doc.repeat !== undefined) {
    const repeat = parseRepeat(doc.repeat);
    if (!repeat.ok) return { ok: false, field: 'repeat', message: repeat.message };
    if (repeat.repeat.kind === 'interval' && !(approximateMs(repeat.repeat.every) >= MIN_REPEAT_MS)) {
      return { ok: false, field: 'repeat', message: `repeat: ${quoteValue(doc.repeat)} is shorter than ${MIN_REPEAT_MS} millisecond` };
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
  return { ok: true, task };
}

/** A worker or job name: non-empty, bounded, printable (it reaches logs and file names). */
function checkName(value: unknown, field: string): Check<string> {
  const problem =
    typeof value !== 'string'
      ? 'is not a string'
      : value.length === 0
        ? 'is empty'
        : value.length > MAX_NAME_LENGTH
          ? `is longer than ${MAX_NAME_LENGTH} characters`
          : CONTROL_CHARACTER.test(value)
            ? 'contains a control character'
            : undefined;
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

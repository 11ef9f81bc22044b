/**
 * One run of a job function, under both contracts a job may follow (SPEC §4):
 *
 * - modern: `async function (task, ctx)` resolves the result or rejects;
 * - original: `function (task)` where `task` is an EventEmitter carrying the document's
 *   fields, and the job calls `task.emit('done', result?)` or `task.emit('error', err?)`.
 *
 * Both receive the same first argument (an EventEmitter copy of the document), so a modern job
 * may also emit. Either form may decide its next run instead (run-again.ts): `return
 * ctx.later(delay)` / `ctx.retry(delay)` / `ctx.release(delay?)`, or `task.emit('later', delay)`
 * and the like. Whatever comes first ends the run — the result, an error, the timeout or the
 * caller's cancel — and everything after it is ignored, so a job that settles twice (or emits
 * after rejecting) can neither change a written outcome nor crash the worker.
 */
import { EventEmitter } from 'node:events';
import { AfterError, JobTimeoutError, toTaskError } from '../errors';
import type { Logger } from '../log';
import type { RunOutcome, TaskDoc } from '../types';
import { jobCopy } from './job-copy';
import { isRunAgainRequest, runAgainBuilders, runAgainOutcome, RunAgainRequest, RUN_AGAIN_KINDS, type RunAgainBuilders } from './run-again';

/** What a job receives as its second argument. */
export interface JobContext extends RunAgainBuilders {
  /** Aborted when the run times out (reason: a JobTimeoutError) or the task is canceled. */
  signal: AbortSignal;
  /** A logger for this run; lines land in the worker's log. */
  log: Logger;
  /**
   * A plain copy of the task document, every field included (the EventEmitter first argument
   * leaves out fields whose names would hide its own methods, like `on` or `emit`).
   */
  doc: TaskDoc;
  /** The number of this run: 1 for the task's first, then one more each run (`executions` + 1). */
  runs: number;
}

/**
 * The first argument of a job: the document's fields on an EventEmitter, plus `signal`.
 * `job`, `_id`, `date` and every other field are there unless they are named like an
 * EventEmitter member; those are in `ctx.doc` only.
 */
export type JobTask = EventEmitter & Partial<TaskDoc> & { signal: AbortSignal };

/** A loaded job: either contract, so its return value is only known at run time. */
export type JobFunction = (task: JobTask, ctx: JobContext) => unknown;

export interface RunJobContext {
  /** The caller's cancel: aborting it ends the run as `{kind: 'canceled'}`. */
  signal: AbortSignal;
  log: Logger;
  /** Milliseconds before the run fails with E_TIMEOUT; none or 0 = no limit. */
  timeoutMs?: number;
}

/** The largest result stored in a document; CouchDB documents are limited (8 MB by default). */
export const MAX_RESULT_BYTES = 1024 * 1024;

/**
 * Runs `fn` for `task` and reports how the run ended. Never rejects: every way a job can go
 * wrong (a synchronous throw, a rejection, an emitted error, a result that cannot be stored)
 * becomes a `failure` outcome.
 *
 * A successful result is returned as the JSON copy that will be stored (`undefined` becomes
 * `null`, Dates become strings), so the job cannot change it afterwards.
 */
export function runJob(fn: JobFunction, task: TaskDoc, ctx: RunJobContext): Promise<RunOutcome> {
  if (ctx.signal.aborted) return Promise.resolve({ kind: 'canceled' });

  return new Promise<RunOutcome>((resolve) => {
    const jobAbort = new AbortController();
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = (outcome: RunOutcome): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onCallerAbort);
      resolve(outcome);
    };
    const runAgain = (request: RunAgainRequest): void => finish(runAgainOutcome(request, Date.now(), storableResult));
    const succeed = (value: unknown): void => {
      if (settled) return;
      if (isRunAgainRequest(value)) runAgain(value);
      else finish(storableResult(value));
    };
    const fail = (thrown: unknown): void => {
      if (settled) return;
      // `throw ctx.retry('5m')` says the same as returning it.
      if (isRunAgainRequest(thrown)) runAgain(thrown);
      else finish({ kind: 'failure', error: toTaskError(thrown) });
    };
    function onCallerAbort(): void {
      if (settled) return;
      jobAbort.abort(ctx.signal.reason);
      finish({ kind: 'canceled' });
    }

    ctx.signal.addEventListener('abort', onCallerAbort, { once: true });
    const timeoutMs = ctx.timeoutMs;
    if (typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0) {
      timer = setTimeout(() => {
        if (settled) return;
        const timeout = new JobTimeoutError(timeoutMs);
        // Finish first, so a job that reacts to the abort by rejecting at once cannot turn
        // the timeout into an ordinary failure.
        finish({ kind: 'failure', error: toTaskError(timeout) });
        jobAbort.abort(timeout);
      }, timeoutMs);
    }

    // One copy for the job, its fields copied when first read (job-copy.ts); ctx.doc and the
    // emitter's fields are the same copy.
    const doc = jobCopy(task);
    const emitter = createTaskEmitter(doc, jobAbort.signal);
    // These listeners stay for the emitter's whole life: without an 'error' listener, a job's
    // late `task.emit('error')` would throw inside the job and could crash the worker.
    emitter.on('done', (result?: unknown) => succeed(result));
    emitter.on('error', (err?: unknown) => fail(err === undefined ? new Error('job reported an error') : err));
    for (const kind of RUN_AGAIN_KINDS) {
      emitter.on(kind, (delay?: unknown, detail?: unknown) => {
        if (settled) return;
        const request = kind === 'release' && delay === undefined ? runAgainBuilders.release() : new RunAgainRequest(kind, delay, detail);
        runAgain(request);
      });
    }

    let returned: unknown;
    try {
      returned = fn(emitter, { signal: jobAbort.signal, log: ctx.log, doc, runs: runNumber(task), ...runAgainBuilders });
    } catch (err) {
      fail(err);
      return;
    }
    if (isThenable(returned)) {
      // Promise.resolve adopts any thenable (and turns a throwing `then` into a rejection);
      // both handlers are attached, so a rejection after the run ended is never unhandled.
      Promise.resolve(returned).then(succeed, fail);
    } else if (returned !== undefined) {
      succeed(returned);
    }
    // undefined: the original contract; the run ends at an emitted event, timeout or cancel.
  });
}

/** The number of the run about to start: the runs recorded so far, plus this one. */
function runNumber(doc: TaskDoc): number {
  const executions = doc.executions;
  return (typeof executions === 'number' && Number.isSafeInteger(executions) && executions >= 0 ? executions : 0) + 1;
}

/**
 * The first argument of a job: a fresh EventEmitter with the document's fields copied on.
 * A field whose name the emitter already has (`on`, `emit`, `_events`, `__proto__`, ...) is
 * left out: copied, it would replace the method the job needs to report its end.
 */
export function createTaskEmitter(doc: TaskDoc, signal: AbortSignal): JobTask {
  const emitter = new EventEmitter();
  const fields = doc as unknown as Record<string, unknown>;
  for (const field of Object.keys(doc)) {
    if (field in emitter || field === 'signal') continue;
    // Read through to `doc`, so a field of a lazy copy (job-copy.ts) is copied only when read.
    Object.defineProperty(emitter, field, {
      get: () => fields[field],
      set: (value: unknown) => void (fields[field] = value),
      enumerable: true,
      configurable: true,
    });
  }
  Object.defineProperty(emitter, 'signal', { value: signal, enumerable: false, writable: false });
  return emitter as JobTask;
}


function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * The result as it will be stored, or a failure when it cannot be: a value JSON would drop or
 * mangle silently (a function, a symbol, a BigInt, a cycle) fails the run rather than leave a
 * result that is not what the job returned.
 */
export function storableResult(value: unknown): RunOutcome {
  if (value === undefined) return { kind: 'success', result: null };
  let serialised: string;
  try {
    serialised = JSON.stringify(value, (_key, inner: unknown) => {
      if (typeof inner === 'function' || typeof inner === 'symbol') throw new TypeError(`a ${typeof inner}`);
      return inner;
    });
  } catch (err) {
    // V8's cycle message spans several lines; the first one says what is wrong.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    return failure('E_RESULT_NOT_JSON', `job result is not JSON-serialisable (${why})`);
  }
  const bytes = Buffer.byteLength(serialised, 'utf8');
  if (bytes > MAX_RESULT_BYTES) {
    return failure(
      'E_RESULT_TOO_LARGE',
      `job result is ${bytes} bytes serialised, more than the ${MAX_RESULT_BYTES} a task document may store; ` +
        'write large output elsewhere and return a reference to it',
    );
  }
  return { kind: 'success', result: JSON.parse(serialised) as unknown };
}

function failure(code: string, message: string): RunOutcome {
  return { kind: 'failure', error: toTaskError(new AfterError(code, message)) };
}

/**
 * The arguments a task gives its job: `job.arguments` in the long form; in the short form
 * (`"job": "name"`) the `data` field, as the argument list when it is an array, else as the
 * only argument.
 */
export function jobArguments(doc: TaskDoc): unknown[] {
  const job = doc.job;
  if (typeof job === 'object' && job !== null && !Array.isArray(job)) {
    const args = (job as { arguments?: unknown }).arguments;
    return Array.isArray(args) ? args : [];
  }
  if (Array.isArray(doc.data)) return doc.data;
  return doc.data === undefined ? [] : [doc.data];
}

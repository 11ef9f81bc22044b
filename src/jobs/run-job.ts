/**
 * One run of a job function, under both contracts a job may follow (docs/spec.md §4):
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

export interface StartJobOptions {
  /** The run's logger, made when the job first reads `ctx.log` (most never do). */
  log(): Logger;
  /** Milliseconds before the run fails with E_TIMEOUT; none or 0 = no limit. */
  timeoutMs?: number;
  /** The clock the run's start and its timeout are read on. @default Date.now */
  now?(): number;
}

/** A job started: its outcome, and the caller's way to cancel it. */
export interface StartedJob {
  /** When the job was called, by `options.now`. */
  readonly startedAtMs: number;
  /** Never rejects: see runJob. */
  readonly outcome: Promise<RunOutcome>;
  /** The caller's cancel: the run ends as `{kind: 'canceled'}` (unless it has already ended) and the job's signal aborts with `reason`. */
  cancel(reason: unknown): void;
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
  const started = startJob(fn, task, { log: () => ctx.log, timeoutMs: ctx.timeoutMs });
  const onCallerAbort = (): void => started.cancel(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onCallerAbort, { once: true });
  return started.outcome.finally(() => ctx.signal.removeEventListener('abort', onCallerAbort));
}

/**
 * Starts `fn` for `task` (see runJob) with what a worker's run needs and nothing more: the job's
 * signal, its copy of the document and its logger are made when the job first reaches for them
 * (most jobs never touch some of them), and the job's events go straight to the run instead of
 * through listeners. A worker starts thousands of these a second in a burst.
 */
export function startJob(fn: JobFunction, task: TaskDoc, options: StartJobOptions): StartedJob {
  const run = new RunningJob(options.now ?? Date.now, options.timeoutMs);
  const copy = new LazyCopy(task);
  const emitter = taskEmitter(task, copy, run);
  let returned: unknown;
  try {
    returned = fn(emitter, runContext(run, task, copy, options.log));
  } catch (err) {
    run.fail(err);
    return run;
  }
  if (isThenable(returned)) {
    // Promise.resolve adopts any thenable (and turns a throwing `then` into a rejection);
    // both handlers are attached, so a rejection after the run ended is never unhandled.
    Promise.resolve(returned).then(
      (value) => run.succeed(value),
      (err: unknown) => run.fail(err),
    );
  } else if (returned !== undefined) {
    run.succeed(returned);
  }
  // undefined: the original contract; the run ends at an emitted event, timeout or cancel.
  return run;
}

/**
 * One run's end, whichever way it comes first: the job's result or error (returned, thrown or
 * emitted), its request to run again, the timeout, or the caller's cancel. Everything after the
 * first is ignored, so a job that settles twice can neither change its outcome nor crash the worker.
 */
class RunningJob implements StartedJob {
  readonly startedAtMs: number;
  readonly outcome: Promise<RunOutcome>;
  private settled = false;
  private resolveOutcome!: (outcome: RunOutcome) => void;
  private timer: NodeJS.Timeout | undefined;
  private controller: AbortController | undefined;
  private abortedWith: { reason: unknown } | undefined;

  constructor(
    private readonly now: () => number,
    private readonly timeoutMs: number | undefined,
  ) {
    this.startedAtMs = now();
    this.outcome = new Promise<RunOutcome>((resolve) => (this.resolveOutcome = resolve));
    if (typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0) this.timer = setTimeout(() => this.onTimeout(), timeoutMs);
  }

  /** The job's signal, made when the job first looks at it (aborted already if the run was). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  succeed(value: unknown): void {
    if (this.settled) return;
    if (isRunAgainRequest(value)) this.runAgain(value);
    else this.finish(storableResult(value));
  }

  fail(thrown: unknown): void {
    if (this.settled) return;
    // `throw ctx.retry('5m')` says the same as returning it.
    if (isRunAgainRequest(thrown)) this.runAgain(thrown);
    else this.finish({ kind: 'failure', error: toTaskError(thrown) });
  }

  runAgain(request: RunAgainRequest): void {
    if (this.settled) return;
    this.finish(runAgainOutcome(request, Date.now(), storableResult));
  }

  cancel(reason: unknown): void {
    if (this.settled) return;
    this.abort(reason);
    this.finish({ kind: 'canceled' });
  }

  private onTimeout(): void {
    if (this.settled) return;
    // A timer may fire a millisecond before the clock shows its time: never early, as a date.
    const leftMs = this.startedAtMs + this.timeoutMs! - this.now();
    if (leftMs > 0) {
      this.timer = setTimeout(() => this.onTimeout(), leftMs);
      return;
    }
    const timeout = new JobTimeoutError(this.timeoutMs!);
    // Finish first, so a job that reacts to the abort by rejecting at once cannot turn the
    // timeout into an ordinary failure.
    this.finish({ kind: 'failure', error: toTaskError(timeout) });
    this.abort(timeout);
  }

  private abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
  }

  private finish(result: RunOutcome): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolveOutcome(result);
  }
}

/** A run context's own state, read by its shared getters (a non-enumerable field: `{ ...ctx }` leaves it out). */
const CONTEXT = Symbol('context');

interface ContextState {
  run: RunningJob;
  copy: LazyCopy;
  makeLog: () => Logger;
  log?: Logger;
}

type StatefulContext = JobContext & { [CONTEXT]: ContextState };

/**
 * The context's fields made on first use, as getters shared by every run: each context then has
 * the same shape (getters made per run, as closures, gave V8 a new shape for every context, a
 * worker starting thousands of runs a second allocated one each).
 */
const LAZY_CONTEXT_FIELDS: PropertyDescriptorMap = {
  signal: {
    get(this: StatefulContext) {
      return this[CONTEXT].run.signal;
    },
    enumerable: true,
    configurable: true,
  },
  doc: {
    get(this: StatefulContext) {
      return this[CONTEXT].copy.doc;
    },
    enumerable: true,
    configurable: true,
  },
  log: {
    get(this: StatefulContext) {
      const state = this[CONTEXT];
      return (state.log ??= state.makeLog());
    },
    enumerable: true,
    configurable: true,
  },
};

/**
 * The job's `ctx`: its signal, copy of the document and logger are made on first use. They are
 * the context's own fields (getters), so a job that spreads `{ ...ctx }` gets them too.
 */
function runContext(run: RunningJob, task: TaskDoc, copy: LazyCopy, makeLog: () => Logger): JobContext {
  const ctx = { runs: runNumber(task), ...runAgainBuilders } as StatefulContext;
  Object.defineProperty(ctx, CONTEXT, { value: { run, copy, makeLog } satisfies ContextState });
  Object.defineProperties(ctx, LAZY_CONTEXT_FIELDS);
  return ctx;
}

/** The number of the run about to start: the runs recorded so far, plus this one. */
function runNumber(doc: TaskDoc): number {
  const executions = doc.executions;
  return (typeof executions === 'number' && Number.isSafeInteger(executions) && executions >= 0 ? executions : 0) + 1;
}

/**
 * A job's first argument built on its own (to call a job directly): `signal` is its signal, and
 * the events that end a run go to its listeners only.
 */
export function createTaskEmitter(doc: TaskDoc, signal: AbortSignal): JobTask {
  const ignore = (): void => undefined;
  return taskEmitter(doc, new LazyCopy(doc), { signal, succeed: ignore, fail: ignore, runAgain: ignore });
}

/**
 * The run's one copy of its task (job-copy.ts), made when the job first reads `ctx.doc` or a
 * field of the emitter holding an object: `task.data` and `ctx.doc.data` are the same copy.
 */
class LazyCopy {
  private made: TaskDoc | undefined;

  constructor(private readonly task: TaskDoc) {}

  get doc(): TaskDoc {
    return (this.made ??= jobCopy(this.task));
  }
}

/** Where a TaskEmitter reports the events that end its run. */
const RUN = Symbol('run');
/** The events by which a job of the original contract ends its run. */
const ENDING_EVENTS = new Set<string | symbol>(['done', 'error', ...RUN_AGAIN_KINDS]);

/** What a TaskEmitter tells of the job's end. */
type RunEnds = Pick<RunningJob, 'signal' | 'succeed' | 'fail' | 'runAgain'>;

/**
 * The first argument of a job: an EventEmitter carrying the document's fields. Emitting `done`,
 * `error`, `later`, `retry` or `release` ends the run (the job's own listeners hear them too),
 * and a late `error` with no listener never throws inside the job.
 */
class TaskEmitter extends EventEmitter {
  declare [RUN]: RunEnds;
  declare [COPY]: LazyCopy;

  get signal(): AbortSignal {
    return this[RUN].signal;
  }

  override emit(name: string | symbol, ...args: unknown[]): boolean {
    const run = this[RUN];
    if (name === 'done') run.succeed(args[0]);
    else if (name === 'error') run.fail(args[0] === undefined ? new Error('job reported an error') : args[0]);
    else if (name === 'later' || name === 'retry' || name === 'release') {
      const [delay, detail] = args;
      run.runAgain(name === 'release' && delay === undefined ? runAgainBuilders.release() : new RunAgainRequest(name, delay, detail));
    }
    if (name === 'error' && this.listenerCount('error') === 0) return true;
    return super.emit(name, ...args) || ENDING_EVENTS.has(name);
  }
}

/** Where a TaskEmitter finds its run's copy of the document (for the fields that hold objects). */
const COPY = Symbol('copy');

/**
 * The getter and setter of an emitter field holding an object, by field name, shared by every
 * run: emitters with the same fields then share one shape in V8 (getters made per run, as
 * closures, gave every emitter a shape of its own). Field names are the users' own, so only so
 * many are kept; a field past them gets accessors of its own.
 */
const objectFieldAccessors = new Map<string, PropertyDescriptor>();
const MAX_SHARED_ACCESSORS = 1000;

function objectFieldAccessor(field: string): PropertyDescriptor {
  let accessor = objectFieldAccessors.get(field);
  if (accessor) return accessor;
  accessor = {
    enumerable: true,
    configurable: true,
    get(this: TaskEmitter) {
      const copied = (this[COPY].doc as unknown as Record<string, unknown>)[field];
      Object.defineProperty(this, field, { value: copied, enumerable: true, writable: true, configurable: true });
      return copied;
    },
    set(this: TaskEmitter, replaced: unknown) {
      Object.defineProperty(this, field, { value: replaced, enumerable: true, writable: true, configurable: true });
    },
  };
  if (objectFieldAccessors.size < MAX_SHARED_ACCESSORS) objectFieldAccessors.set(field, accessor);
  return accessor;
}

/**
 * The first argument of a job: a fresh EventEmitter with the document's fields on it. A field
 * whose name the emitter already has (`on`, `emit`, `signal`, `_events`, `__proto__`, ...) is
 * left out: copied, it would replace what the job needs to report its end. A field holding an
 * object is copied when the job first reads it, so nothing a job does to it reaches the worker's
 * copy, and a job that never reads it costs no copy.
 */
function taskEmitter(doc: TaskDoc, copy: LazyCopy, run: RunEnds): JobTask {
  const emitter = new TaskEmitter() as TaskEmitter & Record<string, unknown>;
  emitter[RUN] = run;
  emitter[COPY] = copy;
  for (const field of Object.keys(doc)) {
    if (field in emitter) continue;
    const value = doc[field];
    // A plain assignment makes the same own, enumerable, writable field as defineProperty, for far less.
    if (typeof value !== 'object' || value === null) emitter[field] = value;
    else Object.defineProperty(emitter, field, objectFieldAccessor(field));
  }
  return emitter as unknown as JobTask;
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

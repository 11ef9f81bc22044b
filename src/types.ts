/**
 * Glossary — the words used everywhere in After's code, docs and logs.
 *
 * - task:      one document in the tasks database: which worker runs which job, and when.
 * - job:       a module in the jobs folder that does the work of a task (`jobs/<name>.js`).
 * - run:       one execution of a task's job, from its claim to its finish write.
 * - worker:    a *name* (`"nightly"`); every task names the worker that runs it.
 * - instance:  one process serving a worker name; several instances share a worker's tasks.
 * - claim:     the single write (with the document's current `_rev`) that gives an instance
 *              a task; a 409 means another writer was first and the claim is lost.
 * - lease:     `{instance, expires_at}` in a claimed task; past `expires_at` (database clock)
 *              any instance of the worker may take the task over.
 * - seq:       an opaque `_changes` sequence, stored verbatim.
 * - horizon:   how far ahead the worker keeps tasks in memory; later tasks stay in the
 *              database and are loaded by date, window by window.
 * - priority:  an integer in a task (`priority`, default 0): when more tasks are due than an
 *              instance has free run slots, the higher priority starts first, then the earlier date.
 * - dependency: a task named in another's `after`: that other task waits, whatever its date,
 *              until every dependency is `done` (`after_failure` says what a failed one means).
 * - series date: a date a repeat names (the anchor plus k intervals, a cron fire time plus the
 *              repeat's `delay`); a task runs at its series date plus its jitter offset.
 * - jitter:    `repeat.jitter`: each series date runs at a stable offset in [0, jitter), derived
 *              from the task id and the date, so every instance computes the same date.
 * - limit:     a rate (`"100/min"`) or concurrency cap in config `limits`, for a worker name or
 *              one job of it, shared by all its live instances; a task held back by one is throttled.
 * - held task: a task an instance keeps in memory (worker/held-task.ts), in one phase: held (in the
 *              per-second timer), blocked (waiting for its dependencies), due (waiting for a run
 *              slot), claiming, claimed (waiting for its date), running, finishing, writing.
 * - backup:    a task held by an instance whose share it is not: claimed only when its owner left
 *              it unclaimed past a grace period (`worker.claim_grace_ms`).
 *
 * Transitions — what an instance does to a task, each with one name. The same word is the kind
 * of decision that asks for it (task/decide.ts), the builder of its write (task/writes.ts), the
 * `during` of a conflict, and the event and log line that follow it (`task:<word, past tense>`):
 *
 * | transition          | decision            | write (task/writes.ts)  | event                    |
 * |---------------------|---------------------|-------------------------|--------------------------|
 * | hold                | hold, keep          | none: kept in memory    | —                        |
 * | schedule            | schedule            | `schedule`: scheduled + lease until date + grace | task:scheduled |
 * | wait for            | wait-for            | none: blocked           | —                        |
 * | take over           | take-over-run       | then `claim`            | —                        |
 * | claim               | (a due task)        | `claim`: running + lease | task:claimed            |
 * | start               | —                   | none: the job is called | task:started             |
 * | renew               | —                   | `renew`: the lease moved on | —                    |
 * | finish              | —                   | `finish`: done, error, waiting... (next-state.ts) | task:finished |
 * | hand back           | —                   | `handBack`: waiting, no lease | task:handed-back   |
 * | mark waiting        | mark-waiting        | `markWaiting`: waiting  | —                        |
 * | invalid             | invalid             | `invalid`: error naming the field | task:invalid   |
 * | dependency failed   | dependency-failed   | `dependencyFailed`: error (E_DEPENDENCY) | task:dependency-failed |
 * | cancel              | cancel              | `cancel`: canceled      | task:canceled            |
 * | request             | —                   | a user's request, carried out (peers/requests.ts) | — |
 *
 * A write that loses (someone else wrote first) emits `task:conflict` (or, a claim that reached
 * fewer copies than a quorum in a cluster, `task:contested`) with the transition as `during`.
 */

/** Every status a task document may carry (docs/spec.md §3). */
export const STATUSES = [
  'waiting',
  'scheduled',
  'running',
  'done',
  'error',
  'reschedule',
  'cancel',
  'canceled',
  'paused',
] as const;
export type Status = (typeof STATUSES)[number];

/** Statuses after which a task is no worker's business until a user sets it going again. */
export const FINISHED_STATUSES: readonly Status[] = ['done', 'error', 'canceled'];

/** Statuses a worker acts on; the others are final (or, `paused`, kept aside) until a user changes them. */
export const ACTIVE_STATUSES: readonly Status[] = ['waiting', 'scheduled', 'running', 'reschedule', 'cancel'];

/** What a task does when a task it waits for (`after`) ends `error` or `canceled`. */
export const AFTER_FAILURES = ['error', 'run'] as const;
/** `error` (default): the task goes to `error` naming the dependency; `run`: it runs anyway. */
export type AfterFailure = (typeof AFTER_FAILURES)[number];

/** `job` as stored: the long form or the short string form (with `data` beside it). */
export interface JobSpec {
  name: string;
  arguments?: unknown[];
  [key: string]: unknown;
}

/** A duration as moment.js understands it, in any of its key forms. */
export type DurationObject = Record<string, number>;

/**
 * A duration of fixed length as a repeat's `jitter` and `delay` take it: milliseconds, an ISO
 * 8601 duration (`"PT5M"`), the compact form (`"5m"`, `"1h30m"`) or a duration object.
 */
export type FixedDuration = number | string | DurationObject;

/**
 * `repeat` as stored: a duration object, an ISO 8601 duration, or a cron schedule. `jitter`
 * spreads each date over [date, date + jitter); `delay` (cron only) moves each fire time.
 */
export type RepeatSpec =
  | string
  | (DurationObject & { limit?: number; until?: string; timezone?: string; jitter?: FixedDuration })
  | { cron: string; timezone?: string; limit?: number; until?: string; jitter?: FixedDuration; delay?: FixedDuration };

export interface RetrySpec {
  limit: number;
  delay?: string | DurationObject | number;
  backoff?: number;
}

/** Who holds a claimed task, and until when (ISO 8601, judged by the database's clock). */
export interface Lease {
  instance: string;
  expires_at: string;
}

export interface LastRun {
  started_at: string;
  finished_at: string;
  duration_ms: number;
  worker: string;
  instance: string;
}

export interface HistoryEntry extends LastRun {
  status: 'done' | 'error';
  error?: TaskError;
}

export interface TaskError {
  message: string;
  code?: string;
}

/**
 * A task document as it may be found in the database. Only `_id`, `_rev` are certain:
 * everything else is untrusted until `validateTask` has looked at it.
 */
export interface TaskDoc {
  _id: string;
  _rev?: string;
  _deleted?: boolean;
  worker?: unknown;
  date?: unknown;
  job?: unknown;
  data?: unknown;
  status?: unknown;
  repeat?: unknown;
  retry?: unknown;
  timeout?: unknown;
  /** Integer, default 0: higher starts first when more tasks are due than free run slots. */
  priority?: unknown;
  /** Ids of the tasks that must be `done` before this one runs. */
  after?: unknown;
  /** `"error"` (default) or `"run"`: what a dependency ending `error` or `canceled` means. */
  after_failure?: unknown;
  executions?: number;
  repetitions?: number;
  retries?: number;
  lease?: Lease;
  last_run?: LastRun;
  result?: unknown;
  error?: TaskError;
  history?: HistoryEntry[];
  /**
   * A user's "run now": when asked (ISO 8601). The task is due at the earlier of this and
   * `date`; the run it makes removes the field, and a repeat's `date` stays as it was.
   */
  run_now?: unknown;
  [field: string]: unknown;
}

/** A task that passed validation: every field the worker reads has its proper type. */
export interface ValidTask {
  doc: TaskDoc;
  id: string;
  worker: string;
  /** epoch milliseconds of `date` */
  dateMs: number;
  /**
   * When the task is due, epoch ms: `date`, or `run_now` when a user asked for a run before it.
   * Every timer, hold and claim of the worker goes by this; the series goes by `dateMs`.
   */
  dueMs: number;
  /** epoch ms of `run_now`, when the document asks for a run now. */
  runNowMs?: number;
  status: Status;
  job: JobSpec;
  repeat?: RepeatSpec;
  retry?: RetrySpec;
  timeoutMs?: number;
  /** @default 0 */
  priority: number;
  /** The tasks it waits for, each once; absent when it waits for none. */
  after?: string[];
  /** @default 'error' */
  afterFailure: AfterFailure;
}

/** When a job asked to run again: `delayMs` after the run ended, or at `atMs` (epoch ms). */
export type RunAgain = { delayMs: number } | { atMs: number };

/**
 * What a job run ended with. Besides success, failure and a cancel, a job may decide its next
 * run itself (jobs/run-again.ts):
 * - `later`: a success, and run again at `when`, whatever the repeat says;
 * - `retry`: a failure, retried at `when` even with no `retry` policy (counted in `retries`);
 * - `release`: handed back, run again at `when`; neither a run nor a failure is counted.
 */
export type RunOutcome =
  | { kind: 'success'; result: unknown }
  | { kind: 'failure'; error: TaskError }
  | { kind: 'canceled' }
  | { kind: 'later'; result: unknown; when: RunAgain }
  | { kind: 'retry'; error: TaskError; when: RunAgain }
  | { kind: 'release'; when: RunAgain };

/**
 * After as a library: `connect()` for task operations and `startWorker()` for a worker in this
 * process. Both use the code paths the CLI uses (store/tasks.ts for tasks, worker/worker.ts for
 * the worker, the same validation), so a task created from code is exactly one created by
 * `after task add`.
 *
 *   import { connect, startWorker } from 'after';
 *   const after = connect({ url: 'http://127.0.0.1:5984', db: 'tasks' });
 *   await after.create({ worker: 'mailer', date: new Date(), job: 'send_report' });
 */
import * as path from 'node:path';
import { loadConfig } from './config/load';
import { type AfterConfig } from './config/types';
import { AfterError, TaskInvalidError, UsageError } from './errors';
import { addBuiltins, addCommands, isJobName, type JobEntry, type JobProblem, type JobRegistry, type LoadJobsOptions } from './jobs/loader';
import type { JobFunction } from './jobs/run-job';
import { silentLogger, type Logger } from './log';
import { startWorkerWithSidecars } from './metrics/worker-sidecars';
import { listInstances, type InstanceView } from './store/for-operators/instances';
import { readRunSeries, type ChartRange, type RunSeries } from './store/for-operators/run-stats';
import { readStatusCounts, serverKindOf } from './store/for-operators/task-counts';
import { readTaskPage, searchById, type PageQuery, type TaskPage } from './store/for-operators/task-pages';
import { listTasks, type StatusCount, type TaskFilter } from './store/for-operators/task-queries';
import { CANCEL_INTENT, createTask, deleteTask, getTask, rescheduleIntent, updateTask } from './store/for-operators/tasks';
import { openConnection, type Connection } from './store/connection';
import { pauseTask, resumeTask, runTaskNow } from './store/for-operators/task-actions';
import { pauseWorker, resumeWorker, type PauseReport } from './store/for-operators/worker-pause';
import { parseTaskDate } from './task/dates';
import { validateTask } from './task/validate';
import type { JobSpec, TaskDoc } from './types';
import type { Worker } from './worker/worker';

export interface ConnectOptions {
  /** CouchDB server URL (may carry credentials). @default config couchdb.url, or AFTER_COUCHDB_URL */
  url?: string;
  /** Tasks database. @default config couchdb.db, or AFTER_DB */
  db?: string;
  /** A whole configuration; `url` and `db` override its database. @default loadConfig() */
  config?: AfterConfig;
  log?: Logger;
}

/** A task to create: the document of docs/spec.md §2, with `date` also accepted as a Date. */
export interface TaskInput {
  /** Choose the id (a second create with it fails with E_TASK_EXISTS). */
  _id?: string;
  worker: string;
  date: string | Date;
  job: string | JobSpec;
  data?: unknown;
  repeat?: unknown;
  retry?: unknown;
  timeout?: number;
  /** @default "waiting" */
  status?: string;
  [field: string]: unknown;
}

export interface Client {
  /** Database name and server URL without credentials. */
  readonly database: string;
  /** Validate (as the worker will) and create; returns the stored document. */
  create(task: TaskInput): Promise<TaskDoc>;
  get(id: string): Promise<TaskDoc>;
  /** Tasks sorted by date, filtered by worker, status and date range. */
  list(filter?: TaskFilter): Promise<TaskDoc[]>;
  /** Ask the worker to drop the task (and abort it if it runs). */
  cancel(id: string): Promise<TaskDoc>;
  /** Move the task to a new date. */
  reschedule(id: string, date: string | Date): Promise<TaskDoc>;
  delete(id: string): Promise<void>;
  /** Task counts by worker and status (from an index kept up to date beside the tasks: at once at any size). */
  counts(): Promise<StatusCount[]>;
  /**
   * One page of a list by status (`waiting`, `scheduled`, `running`, `paused`, `error`, `done`,
   * `canceled`), filtered by worker and job, by date; pass the page's `next` as the next
   * query's `cursor` (keyset paging: as fast on the last page as on the first).
   */
  listPage(query: PageQuery): Promise<TaskPage>;
  /** Tasks whose id starts with `prefix`, by id. */
  searchById(prefix: string, options?: { limit?: number; after?: string }): Promise<{ tasks: TaskDoc[]; next: string | null }>;
  /**
   * Runs done, failed and retried and start lateness p50/p99, per step: the last 10 minutes
   * (`realtime`, 10 s), 7 days (`hours`) or 90 days (`days`), of one worker name or all.
   */
  runFigures(options: { range: ChartRange; worker?: string }): Promise<RunSeries>;
  /** Worker instances (live or not), with what each runs now (`running_now`). */
  instances(): Promise<InstanceView[]>;
  /**
   * Pause a worker name: no new run starts on any of its instances (runs in progress finish,
   * held tasks keep their dates) until `resume(worker)`. Allowed for a name no task has yet
   * (`hasTasks: false` says so).
   */
  pause(worker: string): Promise<PauseReport>;
  /** Resume a paused worker name: what came due meanwhile runs now (a repeat that missed several dates, once). */
  resume(worker: string): Promise<PauseReport>;
  /** Pause one task (`status: "paused"`): its worker drops it; a run in progress finishes. */
  pauseTask(id: string): Promise<TaskDoc>;
  /** Resume a paused task (`status: "waiting"`). */
  resumeTask(id: string): Promise<TaskDoc>;
  /**
   * Run a task once now (`run_now`): a one-shot task runs now instead of at its date, a repeating
   * one runs one extra time and keeps its next date. A running, paused or canceled task is
   * refused (AfterError E_ACTION).
   */
  runNow(id: string): Promise<TaskDoc>;
  /** Abort requests in flight and release sockets. */
  close(): void;
}

export function connect(options: ConnectOptions = {}): Client {
  const config = configFor(options);
  const conn: Connection = openConnection(config, { log: options.log ?? silentLogger() });
  const readSide = async () => ({ conn, kind: await serverKindOf(conn) });
  return {
    database: `${conn.dbName} on ${conn.displayUrl}`,
    async create(task) {
      const doc = taskDoc(task);
      const valid = validateTask(doc as TaskDoc, { minRepeatMs: config.worker.min_repeat_ms, maxTaskBytes: config.worker.max_task_size });
      if (!valid.ok) throw new TaskInvalidError(valid.field, `invalid task: ${valid.message}`);
      const created = await createTask(conn, doc);
      return { ...doc, status: doc.status ?? 'waiting', _id: created.id, _rev: created.rev } as TaskDoc;
    },
    get: (id) => getTask(conn, id),
    list: (filter) => listTasks(conn, filter),
    cancel: (id) => updateTask(conn, id, (doc) => ({ ...doc, status: 'cancel' }), CANCEL_INTENT),
    reschedule(id, date) {
      const iso = date instanceof Date ? date.toISOString() : date;
      const parsed = parseTaskDate(iso);
      if (!parsed.ok) return Promise.reject(new UsageError(`invalid date: ${parsed.message}`));
      return updateTask(conn, id, (doc) => ({ ...doc, status: 'reschedule', date: iso }), rescheduleIntent(iso));
    },
    async delete(id) {
      await deleteTask(conn, id);
    },
    counts: async () => readStatusCounts(await readSide()),
    listPage: async (query) => readTaskPage(await readSide(), query),
    searchById: async (prefix, options) => searchById(await readSide(), prefix, options),
    runFigures: async (options) => readRunSeries(await readSide(), options),
    instances: () => listInstances(conn),
    pause: (worker) => pauseWorker(conn, worker, { by: 'library API' }),
    resume: (worker) => resumeWorker(conn, worker),
    pauseTask: (id) => pauseTask(conn, id),
    resumeTask: (id) => resumeTask(conn, id),
    runNow: (id) => runTaskNow(conn, id),
    close: () => conn.close(),
  };
}

export interface StartWorkerOptions {
  /** The worker name whose tasks this instance runs. */
  name: string;
  /** A jobs folder, or job functions by name. @default config jobs folder */
  jobs?: string | Record<string, JobFunction>;
  /** @default loadConfig() */
  config?: AfterConfig;
  /** Database overrides, as for connect(). */
  url?: string;
  db?: string;
  /** @default config worker.concurrency */
  concurrency?: number;
  /** @default config worker.lease_ms */
  leaseMs?: number;
  /** Serve Prometheus metrics on this port (127.0.0.1). */
  metricsPort?: number;
  /** `Host` names a scraper may use beside the loopback names (a page that rebinds its DNS name is refused). @default [] */
  metricsAllowedHosts?: readonly string[];
  /** @default a silent logger */
  log?: Logger;
}

/**
 * Start a worker instance in this process. Resolves once it follows the database; stop it with
 * `await worker.stop()`. Its heartbeat document makes it show in `after status` and `after ui`.
 */
export async function startWorker(options: StartWorkerOptions): Promise<Worker> {
  const config = configFor(options);
  const log = options.log ?? silentLogger();
  const jobs = typeof options.jobs === 'object' ? registryFromFunctions(options.jobs, config) : undefined;
  const jobsDir = typeof options.jobs === 'string' ? path.resolve(options.jobs) : undefined;
  const { worker } = await startWorkerWithSidecars({
    config,
    name: options.name,
    log,
    metricsPort: options.metricsPort,
    ...(options.metricsAllowedHosts ? { metricsAllowedHosts: options.metricsAllowedHosts } : {}),
    ...(jobs ? { jobs } : {}),
    ...(jobsDir !== undefined ? { jobsDir } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
  });
  return worker;
}

/**
 * A JobRegistry of the given functions plus the built-ins and commands the config enables,
 * checked like a jobs folder: every bad name is reported at once.
 */
export function registryFromFunctions(
  functions: Record<string, JobFunction>,
  config: Pick<AfterConfig, 'builtins'> & Partial<Pick<AfterConfig, 'commands' | 'worker' | 'file'>>,
): JobRegistry {
  const options: LoadJobsOptions = {
    builtins: config.builtins,
    commands: config.commands ?? {},
    configFile: config.file ?? null,
    ...(config.worker ? { programTimeoutMs: config.worker.program_timeout_ms, programUser: config.worker.program_user } : {}),
  };
  const jobs = new Map<string, JobEntry>();
  const problems: string[] = addBuiltins(jobs, options);
  for (const [name, fn] of Object.entries(functions)) {
    if (!isJobName(name)) problems.push(`${JSON.stringify(name)} cannot be a job name (no "/", "\\" or NUL)`);
    else if (typeof fn !== 'function') problems.push(`${name} is ${typeof fn}, not a job function`);
    else if (jobs.has(name)) problems.push(`${name} is a built-in job; rename yours`);
    else jobs.set(name, { name, source: 'function', fn });
  }
  const commandProblems: JobProblem[] = [];
  addCommands(jobs, commandProblems, options);
  problems.push(...commandProblems.map((problem) => problem.message));
  if (problems.length > 0) throw new AfterError('E_JOBS_INVALID', `jobs map has ${problems.length} problem(s): ${problems.join('; ')}`);
  const sorted = [...jobs.values()].sort((a, b) => a.name.localeCompare(b.name));
  return {
    dir: '(functions)',
    names: () => sorted.map((entry) => entry.name),
    resolve: (name) => (typeof name === 'string' ? jobs.get(name)?.fn : undefined),
    entries: () => [...sorted],
    problems: [],
  };
}

function configFor(options: { url?: string; db?: string; config?: AfterConfig }): AfterConfig {
  if (options.config === undefined) {
    // Through the environment overrides, so a bad URL or database name is the same ConfigError.
    return loadConfig({
      ...process.env,
      ...(options.url !== undefined ? { AFTER_COUCHDB_URL: options.url } : {}),
      ...(options.db !== undefined ? { AFTER_DB: options.db } : {}),
    });
  }
  const base = options.config;
  if (options.url === undefined && options.db === undefined) return base;
  return {
    ...base,
    couchdb: { ...base.couchdb, ...(options.url !== undefined ? { url: options.url } : {}), ...(options.db !== undefined ? { db: options.db } : {}) },
  };
}

function taskDoc(task: TaskInput): Record<string, unknown> {
  if (typeof task !== 'object' || task === null) throw new UsageError('a task is an object: {worker, date, job, ...}');
  const date = task.date instanceof Date ? task.date.toISOString() : task.date;
  return { ...task, date };
}

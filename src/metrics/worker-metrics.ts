/**
 * Prometheus metrics of one worker instance, fed by the worker's events (it never imports
 * prom-client, and a throwing listener cannot break it: SafeEmitter). Each worker gets a
 * Registry of its own rather than prom-client's global one, so a program that starts several
 * workers in-process (the library API) or a test never sees one worker's numbers in another's.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SafeEmitter } from '../events';
import type { Logger } from '../log';
import type { WorkerEvents } from '../worker/worker';

/** What metrics read from a worker: its events and two gauges. */
export interface MeteredWorker {
  readonly name: string;
  readonly events: SafeEmitter<WorkerEvents>;
  readonly heldCount: number;
  readonly runningCount: number;
}

/** How a finished run ended, as the `outcome` label says it. */
export type RunOutcomeLabel = 'success' | 'failure' | 'canceled';

/** Run durations: jobs range from milliseconds (a webhook) to hours (a report). */
const DURATION_BUCKETS_S = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Start lateness: the per-second timer makes ~0-1 s normal; more means a busy or stalled worker. */
const LATENESS_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

const DATABASE_ERROR_LINE = /\b(write failed|claim failed|could not record the run)\b/;

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Stop listening to the worker (the registry keeps its last values). */
  detach(): void;
}

/** A registry of the worker's metrics, updated from now on. */
export function createWorkerMetrics(worker: MeteredWorker, options: { log?: Logger; defaultMetrics?: boolean } = {}): WorkerMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: worker.name });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'after_process_' });
  const registers = [registry];

  const runs = new Counter({
    name: 'after_runs_total',
    help: 'Finished runs, by job and outcome (success, failure, canceled)',
    labelNames: ['job', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'after_run_duration_seconds',
    help: 'How long runs took, from claim to finish, by job and outcome',
    labelNames: ['job', 'outcome'] as const,
    buckets: DURATION_BUCKETS_S,
    registers,
  });
  const lateness = new Histogram({
    name: 'after_run_start_lateness_seconds',
    help: "How long after its task's date a run started, by job",
    labelNames: ['job'] as const,
    buckets: LATENESS_BUCKETS_S,
    registers,
  });
  const started = new Counter({ name: 'after_runs_started_total', help: 'Runs started, by job', labelNames: ['job'] as const, registers });
  const scheduled = new Counter({ name: 'after_tasks_scheduled_total', help: 'Tasks this instance took into its timer (scheduled writes)', registers });
  const invalid = new Counter({ name: 'after_tasks_invalid_total', help: 'Tasks set to error without a run (bad field, unknown job)', registers });
  const canceled = new Counter({ name: 'after_tasks_canceled_total', help: 'Cancels acknowledged (canceled writes)', registers });
  const conflicts = new Counter({
    name: 'after_database_conflicts_total',
    help: 'Writes that lost to another writer (409 or a lost cluster claim), by what the write was for',
    labelNames: ['during'] as const,
    registers,
  });
  const errorsLogged = new Counter({
    name: 'after_database_errors_total',
    help: 'Database writes that failed (claims, status changes, run results), as the worker logged them',
    registers,
  });
  new Gauge({
    name: 'after_tasks_held',
    help: 'Tasks this instance holds in memory (waiting for their date, due, claiming or running)',
    registers,
    collect() {
      this.set(worker.heldCount);
    },
  });
  new Gauge({
    name: 'after_runs_running',
    help: 'Runs in progress on this instance now (claims being written included)',
    registers,
    collect() {
      this.set(worker.runningCount);
    },
  });

  // task:finished does not name the job: remember it from task:started.
  const jobOfRun = new Map<string, string>();
  const offs = [
    worker.events.on('task:started', (e) => {
      jobOfRun.set(e.id, e.job);
      started.inc({ job: e.job });
      lateness.observe({ job: e.job }, Math.max(0, e.lateMs) / 1000);
    }),
    worker.events.on('task:finished', (e) => {
      const job = jobOfRun.get(e.id) ?? 'unknown';
      jobOfRun.delete(e.id);
      const outcome = outcomeOf(e);
      runs.inc({ job, outcome });
      duration.observe({ job, outcome }, Math.max(0, e.durationMs) / 1000);
    }),
    worker.events.on('task:scheduled', () => scheduled.inc()),
    worker.events.on('task:invalid', () => invalid.inc()),
    worker.events.on('task:canceled', () => canceled.inc()),
    worker.events.on('task:conflict', (e) => conflicts.inc({ during: e.during })),
  ];

  // The worker reports a failed database write only in its log (worker.ts: "... write failed",
  // "claim failed", "could not record the run"), at error level beside failed runs: count those.
  const onLogLine = (info: { level?: unknown; message?: unknown }): void => {
    if (info.level === 'error' && typeof info.message === 'string' && DATABASE_ERROR_LINE.test(info.message)) errorsLogged.inc();
  };
  options.log?.on('data', onLogLine);

  return {
    registry,
    detach() {
      for (const off of offs) off();
      options.log?.off('data', onLogLine);
    },
  };
}

/** A run that ends `waiting` with an error is a failure that will be retried. */
export function outcomeOf(finished: WorkerEvents['task:finished']): RunOutcomeLabel {
  if (finished.status === 'canceled') return 'canceled';
  if (finished.error !== undefined || finished.status === 'error') return 'failure';
  return 'success';
}

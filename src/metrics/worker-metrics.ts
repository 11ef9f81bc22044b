/**
 * Prometheus metrics of one worker instance, fed by the worker's events (it never imports
 * prom-client, and a throwing listener cannot break it: SafeEmitter). Each worker gets a
 * Registry of its own rather than prom-client's global one, so a program that starts several
 * workers in-process (the library API) or a test never sees one worker's numbers in another's.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { within } from '../clock';
import type { SafeEmitter } from '../events';
import type { StoreHealth } from '../store/types';
import type { WorkerEvents } from '../worker/events';

/** What metrics read from a worker: its events, and what it holds when scraped. */
export interface MeteredWorker {
  readonly name: string;
  readonly events: SafeEmitter<WorkerEvents>;
  readonly runningCount: number;
  /** Due tasks waiting for a rate or concurrency limit now. @default 0 */
  readonly throttledCount?: number;
  /** Tasks held until the tasks they wait for (`after`) are done. @default 0 */
  readonly waitingForDependenciesCount?: number;
  readonly databaseHealth: Readonly<StoreHealth>;
  heldByStatus(): Map<string, number>;
  feedSeqBehind(): Promise<number | undefined>;
}

/** A scrape must answer even with the database away: the feed-lag request gets this long. */
const SEQ_PROBE_TIMEOUT_MS = 2000;

/** How a finished run ended, as the `outcome` label says it. */
export type RunOutcomeLabel = 'success' | 'failure' | 'canceled' | 'released';

/** Run durations: jobs range from milliseconds (a webhook) to hours (a report). */
const DURATION_BUCKETS_S = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Start lateness: the per-second timer makes ~0-1 s normal; more means a busy or stalled worker. */
const LATENESS_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Stop listening to the worker (the registry keeps its last values). */
  detach(): void;
}

/** A registry of the worker's metrics, updated from now on. */
export function createWorkerMetrics(worker: MeteredWorker, options: { defaultMetrics?: boolean } = {}): WorkerMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: worker.name });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'after_process_' });
  const registers = [registry];

  const runs = new Counter({
    name: 'after_runs_total',
    help: 'Finished runs, by job and outcome (success, failure, canceled, released)',
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
  const throttled = new Counter({
    name: 'after_tasks_throttled_total',
    help: 'Runs that started late because a rate or concurrency limit (config limits) held them back, by limit',
    labelNames: ['limit'] as const,
    registers,
  });
  const conflicts = new Counter({
    name: 'after_database_conflicts_total',
    help: 'Writes that lost to another writer (409 or a lost cluster claim), by what the write was for',
    labelNames: ['during'] as const,
    registers,
  });
  new Counter({
    name: 'after_database_errors_total',
    help: 'Database requests that failed (no answer, 5xx, a refused write), whether a retry then succeeded or not',
    registers,
    collect() {
      this.reset();
      this.inc(worker.databaseHealth.requestErrors);
    },
  });
  new Counter({
    name: 'after_feed_reconnects_total',
    help: 'Times the changes feed failed and was requested again from its last seq',
    registers,
    collect() {
      this.reset();
      this.inc(worker.databaseHealth.feedReconnects);
    },
  });
  new Gauge({
    name: 'after_feed_seq_behind',
    help: "Database changes after the last one this instance's feed delivered (other workers' changes count until its next answer); NaN while the database does not answer",
    registers,
    async collect() {
      let behind: number | undefined;
      const probe = worker.feedSeqBehind().then((value) => (behind = value), () => undefined);
      await within(probe, SEQ_PROBE_TIMEOUT_MS);
      // Unknown is NaN, not 0: a scrape during an outage must not say the feed is caught up.
      this.set(behind ?? Number.NaN);
    },
  });
  new Gauge({
    name: 'after_tasks_held',
    help: 'Tasks this instance holds in memory, by the status of their document (waiting: due within a second, not yet claimed)',
    labelNames: ['status'] as const,
    registers,
    collect() {
      this.reset();
      for (const [status, count] of worker.heldByStatus()) this.set({ status }, count);
    },
  });
  new Gauge({
    name: 'after_tasks_throttled',
    help: 'Due tasks waiting now for a rate or concurrency limit (config limits) to have room',
    registers,
    collect() {
      this.set(worker.throttledCount ?? 0);
    },
  });
  new Gauge({
    name: 'after_tasks_waiting_for_dependencies',
    help: 'Tasks this instance holds until the tasks they wait for (after) are done',
    registers,
    collect() {
      this.set(worker.waitingForDependenciesCount ?? 0);
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
    worker.events.on('task:throttled', (e) => throttled.inc({ limit: e.limit })),
  ];

  return {
    registry,
    detach() {
      for (const off of offs) off();
    },
  };
}

/** A run that ends `waiting` with an error is a failure that will be retried. */
export function outcomeOf(finished: WorkerEvents['task:finished']): RunOutcomeLabel {
  if (finished.outcome === 'release') return 'released';
  if (finished.status === 'canceled') return 'canceled';
  if (finished.error !== undefined || finished.status === 'error') return 'failure';
  return 'success';
}

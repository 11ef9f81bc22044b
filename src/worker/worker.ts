/**
 * A worker instance: its pipeline (pipeline.ts: take → decide → hold → claim → run → finish)
 * and what feeds it — the follower (queries and the task feed), the control link (live
 * instances, the worker name's pause, users' requests) and the dependency watch (the tasks its
 * tasks wait for). This file builds them, connects each source to the pipeline's entry point,
 * and is what the CLI, the library and the metrics see of an instance: start, stop, reload,
 * events and counts.
 */
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, within, type Clock } from '../clock';
import type { AfterConfig } from '../config/types';
import { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import { DEFAULT_INSTANCE_HEARTBEAT_MS, RUNNING_NOW_LIMIT } from '../store/schema';
import type { StoreHealth, TaskStore } from '../store/types';
import type { WorkerEvents } from './events';
import { DependencyWatch } from './intake/dependency-watch';
import { Follower } from './intake/follower';
import { ControlLink } from './peers/control-link';
import { Pipeline } from './pipeline';
import type { PipelineSettings } from './pipeline-parts';

export type { WorkerEvents } from './events';

export interface WorkerOptions {
  config: AfterConfig;
  /** The worker name whose tasks this instance runs. */
  name: string;
  log: Logger;
  /** Runs at once. @default config.worker.concurrency */
  concurrency?: number;
  /** @default config.worker.lease_ms */
  leaseMs?: number;
  /** @default config.jobs */
  jobsDir?: string;
  /** How often this instance's document in the control database is rewritten. @default 10000 */
  instanceHeartbeatMs?: number;
  /** The pid its instance document shows (the process a user signals). @default process.pid */
  pid?: number;
  /** Injected for tests and the library API. */
  clock?: Clock;
  store?: TaskStore;
  jobs?: JobRegistry;
}

/** The most a stop may add to the grace period of the runs (hand-backs, the last writes). */
const STOP_MARGIN_MS = 5000;

export class Worker {
  readonly instance: string;
  readonly events = new SafeEmitter<WorkerEvents>();
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;
  private readonly pipeline: Pipeline;
  private readonly follower: Follower;
  private readonly control: ControlLink;
  /** The tasks this instance's waiting tasks wait for (`after`), read and followed. */
  private readonly dependencies: DependencyWatch;
  private stoppingNow = false;
  private resolveDone!: () => void;

  constructor(
    private options: WorkerOptions,
    private readonly store: TaskStore,
    jobs: JobRegistry,
  ) {
    const { config, log } = options;
    const clock = options.clock ?? systemClock;
    this.instance = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.dependencies = new DependencyWatch({
      store,
      clock,
      log,
      heartbeatMs: config.worker.heartbeat_ms,
      onChange: (ids) => this.pipeline.dependenciesChanged(ids),
    });
    this.control = new ControlLink({
      store: store.control,
      worker: options.name,
      instance: this.instance,
      log,
      dbNow: () => store.dbNow(),
      heartbeatIntervalMs: options.instanceHeartbeatMs ?? DEFAULT_INSTANCE_HEARTBEAT_MS,
      pid: options.pid ?? process.pid,
      feedHeartbeatMs: config.worker.heartbeat_ms,
      report: () => ({
        running: this.pipeline.runningCount,
        held: this.pipeline.heldCount,
        ...(this.pipeline.limited ? { throttled: this.pipeline.throttledCount } : {}),
        // What runs now and since when (after status, the dashboard's instances).
        running_now: this.pipeline.runsNow(RUNNING_NOW_LIMIT, store.dbNow()),
      }),
      onMembershipChange: () => this.pipeline.livesChanged(this.control.membership.live, this.control.announced),
      onPauseChange: (paused) => {
        if (!paused) this.pipeline.resumed();
      },
      onRequest: (request) => this.pipeline.requested(request),
    });
    const control = this.control;
    this.pipeline = new Pipeline({
      worker: options.name,
      instance: this.instance,
      store,
      control: store.control,
      clock,
      log,
      events: this.events,
      peers: {
        owns: (id) => control.owns(id),
        get paused() {
          return control.paused;
        },
        get live() {
          return control.membership.live;
        },
        suspect: (instance) => control.suspect(instance),
      },
      dependencies: this.dependencies,
      limits: config.limits,
      leaseMs: options.leaseMs ?? config.worker.lease_ms,
      graceMs: config.worker.claim_grace_ms,
      settings: settingsOf(options),
      jobs,
    });
    this.follower = new Follower({
      store,
      worker: options.name,
      instance: this.instance,
      clock,
      log,
      horizonMs: config.worker.horizon_ms,
      leaseMs: options.leaseMs ?? config.worker.lease_ms,
      heartbeatMs: config.worker.heartbeat_ms,
      onDocs: (docs) => {
        this.pipeline.take(docs);
        return this.pipeline.readyForMore();
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get log(): Logger {
    return this.options.log;
  }

  get stopping(): boolean {
    return this.stoppingNow;
  }

  /** Tasks held in memory (held, due, claimed or running). */
  get heldCount(): number {
    return this.pipeline.heldCount;
  }

  get runningCount(): number {
    return this.pipeline.runningCount;
  }

  /** The worker name is paused (a `pause:<worker>` document): no new run starts. */
  get paused(): boolean {
    return this.control.paused;
  }

  /** Due tasks waiting for a rate or concurrency limit (config `limits`), as of the last try. */
  get throttledCount(): number {
    return this.pipeline.throttledCount;
  }

  /** Tasks this instance holds until the tasks they wait for (`after`) are done. */
  get waitingForDependenciesCount(): number {
    return this.dependencies.waitingCount;
  }

  /** The live instances of this worker name, this one included. */
  get liveInstances(): readonly string[] {
    return this.control.membership.live;
  }

  /** Tasks held in memory by the status their document has now (scheduled, waiting, running...). */
  heldByStatus(): Map<string, number> {
    return this.pipeline.heldByStatus();
  }

  /** Failed database requests and feed reconnects since this instance connected. */
  get databaseHealth(): Readonly<StoreHealth> {
    return this.store.health;
  }

  /**
   * How many database changes came after the last one this instance's feed delivered, from
   * one `GET /db` (no retry). Seqs are opaque; their leading number counts changes on both
   * servers (a cluster's is the sum over its shards). The feed filters by worker and answers
   * when one of this worker's tasks changes, so other workers' changes count here until then.
   */
  async feedSeqBehind(): Promise<number | undefined> {
    const seen = this.follower.lastSeq;
    if (seen === undefined) return undefined;
    const now = await this.store.updateSeq({ once: true });
    const [nowCount, seenCount] = [seqCount(now), seqCount(seen)];
    if (nowCount === undefined || seenCount === undefined) return undefined;
    return Math.max(0, nowCount - seenCount);
  }

  /**
   * A reload (SIGHUP): the jobs for every run from now on (runs in progress finish with the code
   * they started with), and the settings that may change while the instance runs: concurrency
   * (unless the instance was started with its own), the run timeout, the history kept, the
   * shortest repeat. Held tasks and runs are kept; held tasks whose job is gone get their verdict.
   */
  reload(update: { config?: AfterConfig; jobs?: JobRegistry }): void {
    if (this.stoppingNow) return;
    if (update.config) this.options = { ...this.options, config: update.config };
    this.pipeline.reconfigure({ ...(update.config ? { settings: settingsOf(this.options) } : {}), ...(update.jobs ? { jobs: update.jobs } : {}) });
  }

  async start(): Promise<void> {
    // The live instances first: the first window is split among them.
    await this.control.start();
    this.pipeline.livesChanged(this.control.membership.live, this.control.announced);
    const { since } = await this.follower.start();
    this.events.emit('worker:ready', { instance: this.instance, since });
  }

  /**
   * Stop taking tasks, hand held ones back (`waiting`), let runs finish for up to `graceMs`,
   * then abort the rest and hand them back too. Resolves when the instance holds nothing, and
   * at most STOP_MARGIN_MS after the grace period whatever the database does.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.stoppingNow) return this.done;
    this.stoppingNow = true;
    const graceMs = options.graceMs ?? this.options.config.worker.grace_ms;
    const deadline = Date.now() + graceMs + STOP_MARGIN_MS;
    const left = (): number => Math.max(0, deadline - Date.now());
    this.pipeline.stopTaking();
    await within(this.dependencies.stop(), Math.min(2000, left()));
    await within(this.follower.stop(), Math.min(2000, left()));
    await this.pipeline.drain(graceMs, left);
    await within(this.control.stop(), Math.min(2000, left()));
    // Everything this instance held is written (or covered by its lease) by now; a request
    // that does not answer its abort must not keep the process from exiting, nor the stop
    // from ending by its deadline.
    const closeMs = Math.min(2000, left());
    if (!(await within(this.store.close(), closeMs))) this.options.log.warn(`the database connection did not close within ${closeMs} ms; exiting anyway`);
    this.events.emit('worker:stopped', { instance: this.instance });
    this.resolveDone();
  }
}

/** The pipeline's settings from the options and the configuration now. */
function settingsOf(options: WorkerOptions): PipelineSettings {
  const { worker } = options.config;
  return {
    concurrency: options.concurrency ?? worker.concurrency,
    horizonMs: worker.horizon_ms,
    minRepeatMs: worker.min_repeat_ms,
    maxTaskBytes: worker.max_task_size,
    timeoutMs: worker.timeout_ms,
    historyLimit: worker.history_limit,
  };
}

/** The number a seq starts with: pouchdb-server's seq is one, CouchDB's is `<number>-<opaque>`. */
function seqCount(seq: string): number | undefined {
  const head = /^\d+/.exec(seq);
  return head ? Number(head[0]) : undefined;
}

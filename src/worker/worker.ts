/**
 * A worker instance: follower → decide → per-second timer → ready queue → claim → runner,
 * wired together, with the control link (live instances, pause, requests) beside them. The
 * parts: task-table.ts (what is held), entry-writes.ts (the writes of held tasks),
 * run-slots.ts (claims and runs), requests.ts (users' requests), runner.ts (one run).
 *
 * Every document that comes in (query, feed, re-read, a change of the live instances) goes
 * through `decide()` here; every write is built by `task/writes.ts` and made by the TaskWriter
 * with the current `_rev`; a conflict means "someone else changed it first": the task is
 * decided again on the document read back. Writes for one task never overlap.
 */
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, within, type Clock } from '../clock';
import type { AfterConfig } from '../config';
import { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import { trackRunsNow } from '../metrics/runs-now';
import type { Logger } from '../log';
import type { StoreHealth, TaskStore } from '../store/types';
import { DEFAULT_INSTANCE_HEARTBEAT_MS } from '../store/control';
import { leasedBy } from '../task/decide';
import * as writes from '../task/writes';
import type { TaskDoc } from '../types';
import { ControlLink } from './control-link';
import { Decisions } from './decisions';
import { DependencyWatch } from './dependency-watch';
import { EntryWrites } from './entry-writes';
import { FlowQueue } from './flow-queue';
import { Follower } from './follower';
import { RequestDesk } from './requests';
import { Runner } from './runner';
import { RunSlots } from './run-slots';
import { TaskTable } from './task-table';
import { TaskWriter } from './task-writer';
import type { WorkerCore } from './worker-core';
import type { WorkerEvents } from './worker-events';

export type { WorkerEvents } from './worker-events';

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

/**
 * A job may start only once its claim (the `running` write) is won, and that write takes
 * ~10 ms at p50 and 40 ms or more at p99 on pouchdb-server (bench W2, raw). So the timer
 * fires this long before the date, the claim is written meanwhile, and the job starts at the
 * date itself: lateness becomes the timer's, not the database's.
 */
const CLAIM_AHEAD_MS = 250;
/** The most a stop may add to the grace period of the runs (hand-backs, the last writes). */
const STOP_MARGIN_MS = 5000;

export class Worker implements WorkerCore {
  readonly instance: string;
  readonly events = new SafeEmitter<WorkerEvents>();
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;
  readonly clock: Clock;
  readonly table: TaskTable;
  readonly writer: TaskWriter;
  readonly runner: Runner;
  readonly control: ControlLink;
  readonly writes: EntryWrites;
  readonly slots: RunSlots;
  readonly requests: RequestDesk;
  readonly graceMs: number;

  /** The tasks this instance's waiting tasks wait for (`after`), read and followed. */
  private readonly dependencies: DependencyWatch;
  private readonly decisions: Decisions;
  private readonly follower: Follower;
  private readonly leaseMs: number;
  private stoppingNow = false;
  private resolveDone!: () => void;
  /** Writes in flight, so a stop decides on what the database really holds. */
  private readonly writesInFlight = new Set<Promise<unknown>>();

  constructor(
    private options: WorkerOptions,
    readonly store: TaskStore,
    private jobs: JobRegistry,
  ) {
    const { config, log } = options;
    this.instance = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.clock = options.clock ?? systemClock;
    this.leaseMs = options.leaseMs ?? config.worker.lease_ms;
    this.graceMs = config.worker.claim_grace_ms;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const ready = new FlowQueue({
      worker: options.name,
      instance: this.instance,
      limits: config.limits,
      clock: this.clock,
      claimAheadMs: CLAIM_AHEAD_MS,
      onAvailable: () => queueMicrotask(() => this.slots.pump()),
      onThrottled: (id, limit, waitedMs) => this.events.emit('task:throttled', { id, limit, waitedMs }),
    });
    this.table = new TaskTable({ clock: this.clock, ready, claimAheadMs: CLAIM_AHEAD_MS, graceMs: this.graceMs, onDue: (ids) => this.slots.due(ids) });
    this.writes = new EntryWrites(this);
    this.slots = new RunSlots(this, options.concurrency ?? config.worker.concurrency);
    this.requests = new RequestDesk(this);
    this.dependencies = new DependencyWatch({
      store,
      clock: this.clock,
      log,
      heartbeatMs: config.worker.heartbeat_ms,
      onChange: (ids) => this.decisions.redecideWaiting(ids),
    });
    this.decisions = new Decisions(this, {
      worker: options.name,
      config: () => this.options.config,
      jobs: () => this.jobs,
      dependencies: this.dependencies,
    });
    this.writer = new TaskWriter(store, (work) => this.tracked(work));
    this.runner = new Runner({
      worker: options.name,
      instance: this.instance,
      writer: this.writer,
      jobs,
      clock: this.clock,
      log,
      events: this.events,
      dbNow: () => store.dbNow(),
      leaseMs: this.leaseMs,
      graceMs: this.graceMs,
      timeoutMs: config.worker.timeout_ms,
      historyLimit: config.worker.history_limit,
    });
    // What runs now and since when, for the heartbeat (after status, the dashboard's instances).
    const runsNow = trackRunsNow(this.events, () => store.dbNow());
    this.control = new ControlLink({
      store: store.control,
      worker: options.name,
      instance: this.instance,
      log,
      dbNow: () => store.dbNow(),
      heartbeatIntervalMs: options.instanceHeartbeatMs ?? DEFAULT_INSTANCE_HEARTBEAT_MS,
      pid: options.pid ?? process.pid,
      feedHeartbeatMs: config.worker.heartbeat_ms,
      report: () => ({ running: this.slots.running, held: this.table.size, ...(ready.limited ? { throttled: ready.throttledCount } : {}), running_now: runsNow.field() }),
      onMembershipChange: () => {
        ready.membershipChanged(this.control.membership.live, this.control.announced);
        this.decisions.redecideHeld();
      },
      onPauseChange: (paused) => {
        if (!paused) this.decisions.resumed();
      },
      onRequest: (request) => this.requests.received(request),
    });
    this.follower = new Follower({
      store,
      worker: options.name,
      clock: this.clock,
      log,
      horizonMs: config.worker.horizon_ms,
      leaseMs: this.leaseMs,
      heartbeatMs: config.worker.heartbeat_ms,
      onDocs: (docs) => {
        for (const doc of docs) this.ingest(doc);
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

  /** Tasks held in memory (held, due, claiming or running). */
  get heldCount(): number {
    return this.table.size;
  }

  get runningCount(): number {
    return this.slots.running;
  }

  /** The worker name is paused (a `pause:<worker>` document): no new run starts. */
  get paused(): boolean {
    return this.control.paused;
  }

  /** Due tasks waiting for a rate or concurrency limit (config `limits`), as of the last try. */
  get throttledCount(): number {
    return this.table.ready.throttledCount;
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
    return this.table.byStatus();
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
    if (update.config) {
      const config = update.config;
      this.options = { ...this.options, config };
      this.slots.concurrency = this.options.concurrency ?? config.worker.concurrency;
      this.runner.reconfigure({ timeoutMs: config.worker.timeout_ms, historyLimit: config.worker.history_limit });
    }
    if (update.jobs) {
      this.jobs = update.jobs;
      this.runner.reconfigure({ jobs: update.jobs });
    }
    this.decisions.redecideHeld();
    this.slots.pump();
  }

  async start(): Promise<void> {
    // The live instances first: the first window is split among them.
    await this.control.start();
    this.table.ready.membershipChanged(this.control.membership.live, this.control.announced);
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
    this.table.stop();
    this.slots.stop();
    await within(this.dependencies.stop(), Math.min(2000, left()));
    await within(this.follower.stop(), Math.min(2000, left()));
    await within(Promise.allSettled([...this.writesInFlight]), Math.min(graceMs, left()));
    const handBacks: Promise<void>[] = [];
    for (const entry of [...this.table.values()]) {
      if (entry.run || entry.state === 'claiming') continue;
      if (leasedBy(entry.doc, this.instance)) handBacks.push(this.writes.handBack(entry));
      else this.table.delete(entry.id);
    }
    const runs = this.slots.settled();
    if (!(await within(runs, Math.min(graceMs, left())))) {
      for (const entry of this.table.values()) entry.run?.abort('shutdown');
    }
    // Writes retry until the database answers; past the deadline the leases cover what is left.
    await within(Promise.all([runs, ...handBacks]), left());
    await within(this.control.stop(), Math.min(2000, left()));
    // Everything this instance held is written (or covered by its lease) by now; a request
    // that does not answer its abort must not keep the process from exiting, nor the stop
    // from ending by its deadline.
    const closeMs = Math.min(2000, left());
    if (!(await within(this.store.close(), closeMs))) this.options.log.warn(`the database connection did not close within ${closeMs} ms; exiting anyway`);
    this.events.emit('worker:stopped', { instance: this.instance });
    this.resolveDone();
  }

  writeContext(): writes.WriteContext {
    return { instance: this.instance, nowMs: this.store.dbNow(), leaseMs: this.leaseMs, graceMs: this.graceMs };
  }

  /** Every document, from any source, enters here. */
  ingest(doc: TaskDoc): void {
    this.decisions.ingest(doc);
  }

  apply(doc: TaskDoc): void {
    this.decisions.apply(doc);
  }

  private tracked<T>(write: Promise<T>): Promise<T> {
    this.writesInFlight.add(write);
    void write.catch(() => undefined).finally(() => this.writesInFlight.delete(write));
    return write;
  }
}

/** The number a seq starts with: pouchdb-server's seq is one, CouchDB's is `<number>-<opaque>`. */
function seqCount(seq: string): number | undefined {
  const head = /^\d+/.exec(seq);
  return head ? Number(head[0]) : undefined;
}

/**
 * A worker instance: follower → decide → per-second timer → ready queue → claim → runner,
 * wired together, with the control link (live instances, pause, requests) beside them.
 *
 * Every document that comes in (query, feed, re-read, a change of the live instances) goes
 * through `decide()`; every write is built by `task/writes.ts` and made by the TaskWriter with
 * the current `_rev`; a conflict means "someone else changed it first": the task is decided
 * again on the document read back. Writes for one task never overlap.
 */
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, within, type Clock } from '../clock';
import type { AfterConfig } from '../config';
import { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import type { StoreHealth, TaskStore } from '../store/types';
import { decide, isLease, leasedBy, leaseIsLive, type DecideContext } from '../task/decide';
import type { ParsedTask } from '../task/validate';
import * as writes from '../task/writes';
import type { TaskDoc } from '../types';
import { DEFAULT_INSTANCE_HEARTBEAT_MS, type TaskRequest } from '../store/control';
import { ControlLink } from './control-link';
import { DependencyWatch } from './dependency-watch';
import { isNewer, newEntry, type Entry } from './entry';
import { FlowQueue } from './flow-queue';
import { Follower } from './follower';
import { RecentWrites } from './recent-writes';
import { Runner, type RunEnd } from './runner';
import { SecondTimer } from './second-timer';
import { TaskWriter, type WriteReason } from './task-writer';
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

/** How long a task may be due ahead before it is worth a `scheduled` write. */
const DUE_SOON_MS = 1000;
/**
 * A job may start only once its claim (the `running` write) is won, and that write takes
 * ~10 ms at p50 and 40 ms or more at p99 on pouchdb-server (bench W2, raw). So the timer
 * fires this long before the date, the claim is written meanwhile, and the job starts at the
 * date itself: lateness becomes the timer's, not the database's.
 */
const CLAIM_AHEAD_MS = 250;
/** The most backups (another instance's tasks past their grace) claimed at once. */
const MAX_BACKUP_WINDOW = 8;
/** The most a stop may add to the grace period of the runs (hand-backs, the last writes). */
const STOP_MARGIN_MS = 5000;
/**
 * A claimed run that its rate limit makes wait longer than this (the live instances changed
 * after the claim) is handed back rather than kept claimed: its lease is not for waiting.
 */
const MAX_START_WAIT_MS = 5000;

export class Worker {
  readonly instance: string;
  readonly events = new SafeEmitter<WorkerEvents>();
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;

  private readonly entries = new Map<string, Entry>();
  /** Due tasks waiting for a run slot, under config `limits` (flow-queue.ts). */
  private readonly ready: FlowQueue;
  /** The tasks this instance's waiting tasks wait for (`after`), read and followed. */
  private readonly dependencies: DependencyWatch;
  private readonly timer: SecondTimer;
  private readonly follower: Follower;
  private readonly runner: Runner;
  private readonly writer: TaskWriter;
  private readonly control: ControlLink;
  private readonly clock: Clock;
  private concurrency: number;
  private readonly leaseMs: number;
  private readonly graceMs: number;
  private active = 0;
  private stopping = false;
  private resolveDone!: () => void;
  private readonly runsSettled = new Set<Promise<void>>();
  /** Task id → the revision of a claim of ours that lost in a cluster (see isStoodDown). */
  private readonly stoodDown = new Map<string, string>();
  /** What this instance last wrote of tasks it let go of: older copies arriving late are dropped. */
  private readonly recent = new RecentWrites();
  /**
   * Backups (other instances' tasks past their grace) are claimed a few at a time, one more at
   * once with each one won, up to MAX_BACKUP_WINDOW: a busy owner catches up at the end of its
   * backlog, where a thief that took many at once would lose most of them to it. A backup lost
   * to its owner closes the window to one and pauses backups for a grace period. (An owner that
   * is gone is no owner: its share is split among the live instances, claimed at full speed.)
   */
  private backupsPausedUntil = 0;
  private backupWindow = 1;
  private backupsClaiming = 0;
  private backupsTimer: NodeJS.Timeout | undefined;
  /** Users' requests waiting for their task to be idle here (task id → request). */
  private readonly requests = new Map<string, TaskRequest>();
  /** Task id → its run, ending once the run's outcome is written (or abandoned). */
  private readonly runEnds = new Map<string, Promise<RunEnd>>();
  /** Writes in flight, so a stop decides on what the database really holds. */
  private readonly writesInFlight = new Set<Promise<unknown>>();

  constructor(
    private options: WorkerOptions,
    private readonly store: TaskStore,
    private jobs: JobRegistry,
  ) {
    const { config, log } = options;
    this.instance = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.clock = options.clock ?? systemClock;
    this.concurrency = options.concurrency ?? config.worker.concurrency;
    this.leaseMs = options.leaseMs ?? config.worker.lease_ms;
    this.graceMs = config.worker.claim_grace_ms;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.timer = new SecondTimer(this.clock, (ids) => this.onDue(ids));
    this.ready = new FlowQueue({
      worker: options.name,
      instance: this.instance,
      limits: config.limits,
      clock: this.clock,
      claimAheadMs: CLAIM_AHEAD_MS,
      onAvailable: () => queueMicrotask(() => this.pump()),
      onThrottled: (id, limit, waitedMs) => this.events.emit('task:throttled', { id, limit, waitedMs }),
    });
    this.dependencies = new DependencyWatch({
      store,
      clock: this.clock,
      log,
      heartbeatMs: config.worker.heartbeat_ms,
      onChange: (ids) => this.redecideWaiting(ids),
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
    this.control = new ControlLink({
      store: store.control,
      worker: options.name,
      instance: this.instance,
      log,
      dbNow: () => store.dbNow(),
      heartbeatIntervalMs: options.instanceHeartbeatMs ?? DEFAULT_INSTANCE_HEARTBEAT_MS,
      pid: options.pid ?? process.pid,
      feedHeartbeatMs: config.worker.heartbeat_ms,
      report: () => ({ running: this.active, held: this.entries.size, ...(this.ready.limited ? { throttled: this.ready.throttledCount } : {}) }),
      onMembershipChange: () => {
        this.ready.membershipChanged(this.control.membership.live, this.control.announced);
        this.redecideHeld();
      },
      onPauseChange: (paused) => {
        if (!paused) this.resumed();
      },
      onRequest: (request) => this.onRequest(request),
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

  /** Tasks held in memory (held, due, claiming or running). */
  get heldCount(): number {
    return this.entries.size;
  }

  get runningCount(): number {
    return this.active;
  }

  /** The worker name is paused (a `pause:<worker>` document): no new run starts. */
  get paused(): boolean {
    return this.control.paused;
  }

  /** Due tasks waiting for a rate or concurrency limit (config `limits`), as of the last try. */
  get throttledCount(): number {
    return this.ready.throttledCount;
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
    const counts = new Map<string, number>();
    for (const entry of this.entries.values()) {
      const status = typeof entry.doc.status === 'string' ? entry.doc.status : 'waiting';
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    return counts;
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
    if (this.stopping) return;
    if (update.config) {
      const config = update.config;
      this.options = { ...this.options, config };
      this.concurrency = this.options.concurrency ?? config.worker.concurrency;
      this.runner.reconfigure({ timeoutMs: config.worker.timeout_ms, historyLimit: config.worker.history_limit });
    }
    if (update.jobs) {
      this.jobs = update.jobs;
      this.runner.reconfigure({ jobs: update.jobs });
    }
    this.redecideHeld();
    this.pump();
  }

  async start(): Promise<void> {
    // The live instances first: the first window is split among them.
    await this.control.start();
    this.ready.membershipChanged(this.control.membership.live, this.control.announced);
    const { since } = await this.follower.start();
    this.events.emit('worker:ready', { instance: this.instance, since });
  }

  /**
   * Stop taking tasks, hand held ones back (`waiting`), let runs finish for up to `graceMs`,
   * then abort the rest and hand them back too. Resolves when the instance holds nothing, and
   * at most STOP_MARGIN_MS after the grace period whatever the database does.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    const graceMs = options.graceMs ?? this.options.config.worker.grace_ms;
    const deadline = Date.now() + graceMs + STOP_MARGIN_MS;
    const left = (): number => Math.max(0, deadline - Date.now());
    this.timer.stop();
    this.ready.clear();
    if (this.backupsTimer) this.clock.clearTimeout(this.backupsTimer);
    this.ready.stop();
    await within(this.dependencies.stop(), Math.min(2000, left()));
    await within(this.follower.stop(), Math.min(2000, left()));
    await within(Promise.allSettled([...this.writesInFlight]), Math.min(graceMs, left()));
    const handBacks: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      if (entry.run || entry.state === 'claiming') continue;
      if (leasedBy(entry.doc, this.instance)) handBacks.push(this.handBack(entry));
      else this.entries.delete(entry.id);
    }
    const runs = Promise.all([...this.runsSettled]);
    if (!(await within(runs, Math.min(graceMs, left())))) {
      for (const entry of this.entries.values()) entry.run?.abort('shutdown');
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

  private context(): DecideContext {
    const nowMs = this.store.dbNow();
    return {
      worker: this.options.name,
      instance: this.instance,
      nowMs,
      horizonEndMs: nowMs + this.options.config.worker.horizon_ms,
      dueSoonEndMs: this.clock.now() + DUE_SOON_MS,
      owns: (id) => this.control.owns(id),
      validation: { minRepeatMs: this.options.config.worker.min_repeat_ms },
      dependencies: this.dependencies.lookup,
    };
  }

  private writeContext(): writes.WriteContext {
    return { instance: this.instance, nowMs: this.store.dbNow(), leaseMs: this.leaseMs, graceMs: this.graceMs };
  }

  /** Every document, from any source, enters here. */
  private ingest(doc: TaskDoc): void {
    const entry = this.entries.get(doc._id);
    if (entry) {
      if (!isNewer(doc, entry.doc)) return;
      if (entry.run) return this.runner.update(entry, doc);
      if (entry.busy) {
        if (!entry.pending || isNewer(doc, entry.pending)) entry.pending = doc;
        return;
      }
    } else if (this.recent.isStale(doc, this.clock.now())) {
      return;
    }
    this.apply(doc);
  }

  private apply(doc: TaskDoc): void {
    if (this.stopping) return;
    const context = this.context();
    if (this.isStoodDown(doc, context.nowMs)) return;
    const decision = decide(doc, context);
    const id = doc._id;
    if (decision.kind !== 'wait-for') this.dependencies.unwatch(id);
    switch (decision.kind) {
      case 'drop':
        this.forget(id);
        return;
      case 'own-run':
        // Mostly the feed's late echo of this instance's own claim. A claim that landed with
        // its answer lost is recognised by the TaskWriter; one this instance lost track of
        // otherwise has its lease expire, and the sweep takes it over (decide: an expired own lease).
        return;
      case 'mark-waiting':
        void this.writeAndForget(doc, writes.markWaiting(doc), 'mark-waiting');
        return;
      case 'invalid':
        this.forget(id);
        void this.writeVerdict(doc, writes.invalid(doc, decision.field, decision.message), 'error');
        return;
      case 'cancel':
        this.forget(id);
        void this.writeVerdict(doc, writes.canceled(doc), 'canceled');
        return;
      case 'dependency-failed':
        this.forget(id);
        void this.writeVerdict(doc, writes.dependencyFailed(doc, decision.message), 'error');
        return;
      default:
        break;
    }
    const task = decision.task;
    if (!this.jobs.resolve(task.job.name)) {
      this.forget(id);
      const message = `job.name: unknown job ${quote(task.job.name)} (not found in the jobs folder ${this.jobs.dir})`;
      void this.writeVerdict(doc, writes.invalid(doc, 'job.name', message), 'error');
      return;
    }
    switch (decision.kind) {
      case 'hold':
        this.hold(doc, task, decision.backup);
        return;
      case 'keep':
        this.hold(doc, task, false);
        return;
      case 'schedule':
        void this.schedule(doc, task);
        return;
      case 'wait-for': {
        // Out of the timer until its dependencies change (dependency-watch.ts).
        const entry = this.entry(doc, task);
        this.timer.remove(id);
        this.ready.remove(id);
        entry.state = 'held';
        entry.backup = false;
        this.dependencies.watch(id, decision.watch);
        return;
      }
      case 'take-over-run': {
        if (decision.backup && isLease(doc.lease) && this.control.membership.live.includes(doc.lease.instance)) {
          // Its holder let the lease run out: it is gone, whatever its last heartbeat says. The
          // tasks of its share (this one perhaps) are split among the others at once.
          this.control.suspect(doc.lease.instance);
          if (!this.control.membership.live.includes(doc.lease.instance)) return this.apply(doc);
        }
        if (decision.backup) {
          // Another instance's share: its owner takes the run over at once; this one only if
          // the run is still not taken a grace period later.
          this.hold(doc, task, true, this.clock.now());
          return;
        }
        this.options.log.warn(`task ${id}: the lease of ${describeLease(doc)} expired; taking the run over`);
        const entry = this.entry(doc, task);
        entry.backup = false;
        this.timer.remove(id);
        this.makeReady(entry);
        this.pump();
        return;
      }
    }
  }

  /**
   * A claim of ours that lost in a cluster (a 202, SPEC §7) may still be what the database
   * shows, with our live lease: it is not ours to hold or run. Once its lease has run out the
   * task is decided as any other (the lease sweep takes it over).
   */
  private isStoodDown(doc: TaskDoc, nowMs: number): boolean {
    const rev = this.stoodDown.get(doc._id);
    if (rev === undefined) return false;
    if (doc._rev === rev && leaseIsLive(doc.lease, nowMs)) return true;
    if (doc._rev !== rev) this.stoodDown.delete(doc._id);
    return false;
  }

  private entry(doc: TaskDoc, task: ParsedTask | undefined): Entry {
    let entry = this.entries.get(doc._id);
    if (!entry) {
      entry = newEntry(doc, task);
      this.entries.set(doc._id, entry);
    }
    entry.doc = doc;
    entry.task = task;
    return entry;
  }

  /**
   * Hold in memory until the claim is due: this instance's share a little before its date
   * (CLAIM_AHEAD_MS), a backup once its grace has passed (from `fromMs`, by default the date).
   */
  private hold(doc: TaskDoc, task: ParsedTask, backup: boolean, fromMs = task.dueMs): void {
    const entry = this.entry(doc, task);
    if (entry.state === 'ready') this.ready.remove(entry.id);
    entry.state = 'held';
    entry.backup = backup;
    this.timer.add(entry.id, backup ? fromMs + this.graceMs : task.dueMs - CLAIM_AHEAD_MS);
  }

  private forget(id: string): void {
    const entry = this.entries.get(id);
    if (entry && (entry.run || entry.state === 'claiming')) return;
    this.timer.remove(id);
    this.ready.remove(id);
    this.entries.delete(id);
  }

  /**
   * The worker name was resumed. During the pause no owner could claim its share, so every
   * backup's grace has run out: backups wait one grace period again, from now, and the owners
   * take their own tasks first rather than every instance racing for all of them.
   */
  private resumed(): void {
    for (const entry of this.entries.values()) {
      if (!entry.backup || !entry.task || entry.busy || entry.run) continue;
      if (entry.state === 'held' || entry.state === 'ready') this.hold(entry.doc, entry.task, true, this.clock.now());
    }
    this.pump();
  }

  /** The tasks these tasks wait for changed: decide them again. */
  private redecideWaiting(ids: readonly string[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry || entry.run || entry.busy || entry.state !== 'held') continue;
      this.apply(entry.doc);
    }
  }

  /** The live instances changed: tasks held but not claimed may now be another's share, or ours. */
  private redecideHeld(): void {
    for (const entry of [...this.entries.values()]) {
      if (entry.run || entry.busy || entry.state === 'claiming' || entry.state === 'running') continue;
      this.apply(entry.doc);
    }
  }

  /** Claim the hold: `scheduled` with this instance's lease, until a grace period after the date. */
  private async schedule(doc: TaskDoc, task: ParsedTask): Promise<void> {
    const entry = this.entry(doc, task);
    this.timer.remove(entry.id);
    const written = await this.writeFor(entry, writes.hold(doc, task.dueMs, this.writeContext()), 'schedule');
    if (!written) return;
    this.hold(written, task, false);
    this.events.emit('task:scheduled', { id: entry.id, date: iso(task.dueMs) });
    this.afterWrite(entry);
  }

  /** `error` for an invalid task, `canceled` for a cancel. */
  private async writeVerdict(doc: TaskDoc, next: TaskDoc, reason: 'error' | 'canceled'): Promise<void> {
    const entry = this.entry(doc, undefined);
    const written = await this.writeFor(entry, next, reason);
    if (!written) return;
    this.entries.delete(entry.id);
    this.recent.remember(written, this.clock.now());
    if (reason === 'canceled') this.events.emit('task:canceled', { id: entry.id });
    else this.events.emit('task:invalid', { id: entry.id, message: next.error?.message ?? '' });
  }

  private async writeAndForget(doc: TaskDoc, next: TaskDoc, reason: WriteReason): Promise<void> {
    const entry = this.entry(doc, undefined);
    if (await this.writeFor(entry, next, reason)) this.forget(entry.id);
  }

  /** Give a held task back to `waiting` so any instance may take it (shutdown). */
  private async handBack(entry: Entry): Promise<void> {
    const written = await this.writeFor(entry, writes.handBack(entry.doc), 'hand-back', { redecide: false });
    this.entries.delete(entry.id);
    if (written) this.events.emit('task:handed-back', { id: entry.id });
  }

  /**
   * One write of `entry`'s task through the TaskWriter. Returns the written document, or
   * undefined when it lost to another writer (the task is then decided again on the document
   * read back) or could not be written (dropped: the next window query brings it back).
   */
  private async writeFor(entry: Entry, next: TaskDoc, reason: WriteReason, options: { redecide?: boolean } = {}): Promise<TaskDoc | undefined> {
    entry.busy = true;
    let outcome: Awaited<ReturnType<TaskWriter['write']>>;
    try {
      outcome = await this.writer.write(next, reason, entry.task?.dueMs ?? 0);
    } finally {
      entry.busy = false;
      if (this.requests.has(entry.id)) queueMicrotask(() => this.serveRequest(entry.id));
    }
    if (outcome.kind === 'written') {
      entry.doc = outcome.doc;
      return outcome.doc;
    }
    if (outcome.kind === 'failed') {
      // Refused, not a conflict (a validate_doc_update, a permission), or the re-read failed:
      // deciding again at once would send the same write again in a loop. The next window
      // query brings the task back.
      this.options.log.error(`task ${entry.id}: ${reason} failed: ${outcome.error.message}; the next window query will find it`);
      this.dropEntry(entry);
      return undefined;
    }
    // The database may show our contested claim a while longer, with our lease: it is not ours.
    if (outcome.contestedRev !== undefined) {
      this.stoodDown.set(entry.id, outcome.contestedRev);
      this.events.emit('task:contested', { id: entry.id, during: reason });
    } else {
      this.events.emit('task:conflict', { id: entry.id, during: reason });
    }
    this.dropEntry(entry);
    if (outcome.fresh && options.redecide !== false) this.apply(outcome.fresh);
    return undefined;
  }

  /** Drop a task this instance failed to write: whatever it held for it goes. */
  private dropEntry(entry: Entry): void {
    entry.busy = false;
    entry.state = 'held';
    this.forget(entry.id);
  }

  private tracked<T>(write: Promise<T>): Promise<T> {
    this.writesInFlight.add(write);
    void write.catch(() => undefined).finally(() => this.writesInFlight.delete(write));
    return write;
  }

  /** A document seen while a write was in flight is decided once the write is done. */
  private afterWrite(entry: Entry): void {
    const pending = entry.pending;
    entry.pending = undefined;
    if (pending && isNewer(pending, entry.doc)) this.ingest(pending);
  }

  private makeReady(entry: Entry): void {
    entry.state = 'ready';
    const task = entry.task!;
    this.ready.push(entry.id, { dueMs: task.dueMs, backup: entry.backup, priority: task.priority }, task.job.name);
  }

  private onDue(ids: string[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry || entry.state !== 'held' || !entry.task) continue;
      this.makeReady(entry);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopping && !this.control.paused && this.active < this.concurrency) {
      const id = this.ready.pop();
      if (id === undefined) return;
      const entry = this.entries.get(id);
      if (!entry || entry.state !== 'ready' || entry.busy) {
        // Popped, so its limits reserved room for it: given back.
        this.ready.release(id);
        continue;
      }
      if (entry.backup && (this.clock.now() < this.backupsPausedUntil || this.backupsClaiming >= this.backupWindow)) {
        // Backups come after every task of our own: nothing of ours waits either.
        this.ready.release(id);
        this.makeReady(entry);
        if (this.clock.now() < this.backupsPausedUntil) this.resumeBackupsLater();
        return;
      }
      this.active += 1;
      const settled: Promise<void> = this.claimAndRun(entry)
        .catch((err: Error) => {
          this.options.log.error(`task ${id}: run failed unexpectedly: ${err.stack ?? err.message}`);
        })
        .finally(() => {
          this.runsSettled.delete(settled);
        });
      this.runsSettled.add(settled);
    }
  }

  private resumeBackupsLater(): void {
    if (this.backupsTimer) return;
    this.backupsTimer = this.clock.setTimeout(() => {
      this.backupsTimer = undefined;
      this.pump();
    }, Math.max(0, this.backupsPausedUntil - this.clock.now()));
  }

  private async claimAndRun(entry: Entry): Promise<void> {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.ready.release(entry.id);
      this.pump();
    };
    try {
      entry.state = 'claiming';
      const backup = entry.backup;
      if (backup) this.backupsClaiming += 1;
      let claimed: TaskDoc | undefined;
      try {
        claimed = await this.writeFor(entry, writes.claim(entry.doc, this.writeContext()), 'claim');
      } finally {
        if (backup) this.backupsClaiming -= 1;
      }
      if (backup) {
        if (claimed) {
          this.backupWindow = Math.min(this.concurrency, MAX_BACKUP_WINDOW, this.backupWindow + 1);
        } else {
          // Another instance was first to a task of its own share: its owner is at work there.
          this.backupWindow = 1;
          this.backupsPausedUntil = this.clock.now() + this.graceMs;
        }
      }
      if (!claimed) return;
      if (this.stopping) {
        // The signal came while the claim was in flight: no new run starts after it.
        await this.handBack(entry);
        return;
      }
      const untilDate = await this.untilDate(entry);
      if (this.requests.has(entry.id)) {
        // A user's request came meanwhile: it goes first, on top of our claim.
        entry.state = 'held';
        this.serveRequest(entry.id);
        return;
      }
      if (!untilDate) {
        // Stopping, or a newer version of the task (a cancel, a reschedule) came meanwhile.
        entry.state = 'held';
        if (this.stopping) await this.handBack(entry);
        else this.afterWrite(entry);
        return;
      }
      if (this.control.paused) {
        // The worker name was paused between the claim (written ahead of the date) and the date:
        // no run starts. The task goes back to `waiting`, held here until the resume (a stop
        // meanwhile leaves it to this write: the entry stays `claiming` until it is done).
        const handedBack = await this.writeFor(entry, writes.handBack(entry.doc), 'hand-back');
        entry.state = 'held';
        if (!handedBack) return;
        this.events.emit('task:handed-back', { id: entry.id });
        if (this.stopping) {
          this.entries.delete(entry.id);
          return;
        }
        this.apply(handedBack);
        this.afterWrite(entry);
        return;
      }
      // The limits are checked, the job called and its start counted in one turn: no other start
      // of this instance comes between (limiter.ts).
      let limitWaitMs: number;
      while ((limitWaitMs = this.ready.startWaitMs(entry.id)) > 0) {
        if (!(await this.waitForLimits(entry, limitWaitMs))) return await this.startGivenUp(entry);
      }
      entry.state = 'running';
      const running = this.runner.run(entry, release);
      // Counted once the job has been called, so the job's own clock read comes first.
      this.ready.started(entry.id);
      this.runEnds.set(entry.id, running);
      const end = await running.finally(() => this.runEnds.delete(entry.id));
      release();
      await this.afterRun(entry, end);
    } finally {
      release();
    }
  }

  /**
   * Claimed ahead of the date: wait for the date itself (never early). A newer version of the
   * task seen meanwhile (a cancel, a reschedule) is decided instead of the run.
   */
  private async untilDate(entry: Entry): Promise<boolean> {
    const dateMs = entry.task!.dueMs;
    entry.busy = true;
    try {
      for (let wait = dateMs - this.clock.now(); wait > 0 && !this.stopping; wait = dateMs - this.clock.now()) {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, wait));
      }
    } finally {
      entry.busy = false;
    }
    return !this.stopping && !(entry.pending !== undefined && isNewer(entry.pending, entry.doc));
  }

  /**
   * The rate limits of a claimed run ask it to wait `waitMs` before it starts (a run claimed
   * ahead of its date, or the live instances changed since the claim): wait, unless stopping, a
   * newer version of the task or a user's request came, or the wait would outlast what a claim
   * is for. True when it is worth checking again.
   */
  private async waitForLimits(entry: Entry, waitMs: number): Promise<boolean> {
    if (waitMs > MAX_START_WAIT_MS || this.stopping || this.requests.has(entry.id)) return false;
    entry.busy = true;
    try {
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, waitMs));
    } finally {
      entry.busy = false;
    }
    return !this.stopping && !this.requests.has(entry.id) && !(entry.pending !== undefined && isNewer(entry.pending, entry.doc));
  }

  /** A claimed run that will not start now (see waitForLimits): what comes instead. */
  private async startGivenUp(entry: Entry): Promise<void> {
    entry.state = 'held';
    if (this.requests.has(entry.id) && !this.stopping) return this.serveRequest(entry.id);
    if (!this.stopping && entry.pending !== undefined && isNewer(entry.pending, entry.doc)) return this.afterWrite(entry);
    // Stopping, or the live instances changed since the claim and its limit has no room for a while.
    if (!this.stopping) this.options.log.info(`task ${entry.id}: its rate limit has no room now; handing it back`);
    await this.handBack(entry);
  }

  /** What the instance does with a task once its run has ended. */
  private async afterRun(entry: Entry, end: RunEnd): Promise<void> {
    switch (end.kind) {
      case 'shutdown':
        await this.handBack(entry);
        return;
      case 'recorded':
        this.entries.delete(entry.id);
        this.recent.remember(end.doc, this.clock.now());
        if (end.doc.status === 'waiting' && !this.stopping) this.apply(end.doc);
        this.serveRequest(entry.id);
        return;
      case 'abandoned':
        this.forget(entry.id);
        if (end.doc && !this.stopping) this.apply(end.doc);
        this.serveRequest(entry.id);
        return;
    }
  }

  /**
   * A user's request about a task (control-link.ts): carried out by the instance responsible
   * for the task — the one holding its lease, or, with no holder, its owner — with its own
   * writes, at a moment this instance writes nothing else to it, so it cannot lose a race
   * against them.
   */
  private onRequest(request: TaskRequest): void {
    if (this.stopping) return;
    const entry = this.entries.get(request.task);
    const responsible = entry
      ? entry.run !== undefined || leasedBy(entry.doc, this.instance) || (!isLease(entry.doc.lease) && this.control.owns(request.task))
      : this.control.owns(request.task);
    if (!responsible) return;
    this.requests.set(request.task, request);
    this.serveRequest(request.task);
  }

  /** Carry out the request waiting for task `id`, now if the task is idle here, else at its next idle moment. */
  private serveRequest(id: string): void {
    const request = this.requests.get(id);
    if (!request || this.stopping) return;
    const entry = this.entries.get(id);
    if (entry?.run && entry.run.ended) {
      // The job has ended and its outcome is being written: the request comes after it.
      void this.runEnds.get(id)?.finally(() => this.serveRequest(id));
      return;
    }
    if (entry?.run) {
      // A run ends as the user asks: a cancel aborts it (recorded as canceled), a pause lets it
      // finish (the task stays paused), a delete aborts it and deletes the task once it is over,
      // a reschedule or a run now lets it finish and then moves the task or runs it again.
      if (request.action === 'delete' || request.action === 'reschedule' || request.action === 'run-now') {
        if (request.action === 'delete') entry.run.abort('deleted');
        void this.runEnds.get(id)?.finally(() => this.serveRequest(id));
        return;
      }
      if (request.action === 'cancel') entry.run.abort('cancel');
      if (request.action === 'pause') entry.doc = { ...entry.doc, status: 'paused' };
      this.requests.delete(id);
      void this.store.control.remove(request.id, request.rev).catch(() => false);
      return;
    }
    if (entry && (entry.busy || entry.state === 'claiming' || entry.state === 'running')) return;
    this.requests.delete(id);
    void this.carryOut(request, entry).finally(() => this.store.control.remove(request.id, request.rev).catch(() => false));
  }

  private async carryOut(request: TaskRequest, entry: Entry | undefined): Promise<void> {
    if (entry) {
      this.timer.remove(entry.id);
      this.ready.remove(entry.id);
      entry.state = 'held';
    }
    let current: TaskDoc | null | undefined = entry?.doc;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (current === undefined) current = await this.writer.reread(request.task).catch(() => undefined);
      if (!current) return;
      const next = requestedDoc(current, request);
      if (!next) return;
      const outcome = await this.writer.write(next, 'request');
      if (outcome.kind === 'written') {
        this.ingest(outcome.doc);
        return;
      }
      if (outcome.kind === 'failed') {
        this.options.log.error(`task ${request.task}: the ${request.action} request could not be written: ${outcome.error.message}`);
        return;
      }
      current = outcome.fresh;
    }
  }
}

/**
 * What a request asks to be written, on the task as it is now (no run of it is alive here: a
 * lease it carries is this instance's claim, given up); null when there is nothing to write.
 */
function requestedDoc(current: TaskDoc, request: TaskRequest): TaskDoc | null {
  const { lease: _givenUp, ...rest } = current;
  const status = String(current.status);
  switch (request.action) {
    case 'cancel':
      return ['done', 'error', 'canceled', 'cancel'].includes(status) ? null : { ...rest, status: 'cancel' };
    case 'delete':
      return { _id: current._id, _rev: current._rev, _deleted: true };
    case 'pause':
      return ['done', 'error', 'canceled', 'paused'].includes(status) ? null : { ...rest, status: 'paused' };
    case 'reschedule':
      if (request.date === undefined) return null;
      return { ...rest, status: ['done', 'error', 'canceled'].includes(status) ? 'waiting' : 'reschedule', date: request.date };
    case 'run-now':
      if (request.date === undefined || ['canceled', 'cancel', 'paused'].includes(status)) return null;
      return { ...rest, status: status === 'reschedule' ? status : 'waiting', run_now: request.date };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeLease(doc: TaskDoc): string {
  return isLease(doc.lease) ? `instance ${doc.lease.instance}` : 'no holder';
}

/** The number a seq starts with: pouchdb-server's seq is one, CouchDB's is `<number>-<opaque>`. */
function seqCount(seq: string): number | undefined {
  const head = /^\d+/.exec(seq);
  return head ? Number(head[0]) : undefined;
}

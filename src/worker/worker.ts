/**
 * A worker instance: follower → per-second timer → ready queue → runs, wired together.
 *
 * Every document that comes in (query, feed, re-read) goes through `decide()`; every write is
 * one document write with the current `_rev`, and a conflict means "someone else changed it
 * first": the document is read again and decided again. Writes for one task never overlap.
 */
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, within, type Clock } from '../clock';
import type { AfterConfig } from '../config';
import { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import type { StoreHealth, TaskStore } from '../store/types';
import { canceledState, invalidState } from '../task/next-state';
import type { ParsedTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { decide, isLease, isOwnWrite, leaseIsLive, restartedSeries, type DecideContext } from './decide';
import { isNewer, newEntry, type Entry } from './entry';
import { Follower } from './follower';
import { ReadyQueue } from './ready-queue';
import { Runner, type RunEnd } from './runner';
import { SecondTimer } from './second-timer';
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
  /** Injected for tests and the library API. */
  clock?: Clock;
  store?: TaskStore;
  jobs?: JobRegistry;
}

/** What a worker writes to a task outside a run's result (the `during` of conflicts and logs). */
type WriteReason = 'schedule' | 'claim' | 'mark-waiting' | 'hand-back' | 'error' | 'canceled';

/** How long a task may be due ahead before it is worth a `scheduled` write. */
const DUE_SOON_MS = 1000;
/**
 * A job may start only once its claim (the `running` write) is won, and that write takes
 * ~10 ms at p50 and 40 ms or more at p99 on pouchdb-server (bench W2, raw). So the timer
 * fires this long before the date, the claim is written meanwhile, and the job starts at the
 * date itself: lateness becomes the timer's, not the database's.
 */
const CLAIM_AHEAD_MS = 250;

export class Worker {
  readonly instance: string;
  readonly events = new SafeEmitter<WorkerEvents>();
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;

  private readonly entries = new Map<string, Entry>();
  private readonly ready = new ReadyQueue();
  private readonly timer: SecondTimer;
  private readonly follower: Follower;
  private readonly runner: Runner;
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private active = 0;
  private stopping = false;
  private resolveDone!: () => void;
  private readonly runsSettled = new Set<Promise<void>>();
  /** Task id → the revision of a claim of ours that lost in a cluster (see isStoodDown). */
  private readonly stoodDown = new Map<string, string>();
  /** Writes in flight, so a stop decides on what the database really holds. */
  private readonly writesInFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly options: WorkerOptions,
    private readonly store: TaskStore,
    private readonly jobs: JobRegistry,
  ) {
    const { config } = options;
    this.instance = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.clock = options.clock ?? systemClock;
    this.concurrency = options.concurrency ?? config.worker.concurrency;
    this.leaseMs = options.leaseMs ?? config.worker.lease_ms;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.timer = new SecondTimer(this.clock, (ids) => this.onDue(ids));
    this.runner = new Runner({
      worker: options.name,
      instance: this.instance,
      store,
      jobs,
      clock: this.clock,
      log: options.log,
      events: this.events,
      leaseMs: this.leaseMs,
      timeoutMs: config.worker.timeout_ms,
      historyLimit: config.worker.history_limit,
      isStopping: () => this.stopping,
      tracked: (write) => this.tracked(write),
    });
    this.follower = new Follower({
      store,
      worker: options.name,
      clock: this.clock,
      log: options.log,
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

  async start(): Promise<void> {
    const { since } = await this.follower.start();
    this.events.emit('worker:ready', { instance: this.instance, since });
  }

  /**
   * Stop taking tasks, hand held ones back (`waiting`), let runs finish for up to `graceMs`,
   * then abort the rest and hand them back too. Resolves when the instance holds nothing.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    const graceMs = options.graceMs ?? this.options.config.worker.grace_ms;
    await within(this.follower.stop(), 5000);
    this.timer.stop();
    this.ready.clear();
    await within(Promise.allSettled([...this.writesInFlight]), graceMs);
    const handBacks: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      if (entry.run || entry.state === 'claiming') continue;
      if (isLease(entry.doc.lease) && entry.doc.lease.instance === this.instance) {
        handBacks.push(this.handBack(entry));
      } else {
        this.entries.delete(entry.id);
      }
    }
    const runs = Promise.all([...this.runsSettled]);
    if (!(await within(runs, graceMs))) {
      for (const entry of this.entries.values()) entry.run?.abort('shutdown');
    }
    // Writes retry until the database answers; past this the leases cover what is left.
    await within(Promise.all([runs, ...handBacks]), Math.max(5000, this.leaseMs / 2));
    // Everything this instance held is written (or covered by its lease) by now; a feed request
    // that does not answer its abort must not keep the process from exiting.
    if (!(await within(this.store.close(), 5000))) this.options.log.warn('the database connection did not close within 5 s; exiting anyway');
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
    };
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
    }
    this.apply(doc);
  }

  private apply(found: TaskDoc): void {
    if (this.stopping) return;
    const doc = restartedSeries(found);
    const context = this.context();
    if (this.isStoodDown(doc, context.nowMs)) return;
    const decision = decide(doc, context);
    const id = doc._id;
    switch (decision.kind) {
      case 'drop':
        this.forget(id);
        return;
      case 'own-run':
        // Mostly the feed's late echo of this instance's own claim. A claim that landed with
        // its answer lost is recognised in claim(); one this instance lost track of otherwise
        // has its lease expire, and the sweep takes it over (decide: an expired own lease).
        return;
      case 'mark-waiting':
        void this.markWaiting(doc);
        return;
      case 'invalid':
        this.forget(id);
        void this.writeFinal(doc, invalidState(doc, decision.field, decision.message), 'error');
        return;
      case 'cancel':
        this.forget(id);
        void this.writeFinal(doc, canceledState(doc), 'canceled');
        return;
      default:
        break;
    }
    const task = decision.task;
    if (!this.jobs.resolve(task.job.name)) {
      this.forget(id);
      const message = `job.name: unknown job ${quote(task.job.name)} (not found in the jobs folder ${this.jobs.dir})`;
      void this.writeFinal(doc, invalidState(doc, 'job.name', message), 'error');
      return;
    }
    switch (decision.kind) {
      case 'hold':
      case 'keep':
        this.hold(doc, task);
        return;
      case 'schedule':
        void this.schedule(doc, task);
        return;
      case 'take-over-run': {
        this.options.log.warn(`task ${id}: the lease of ${describeLease(doc)} expired; taking the run over`);
        const entry = this.entry(doc, task);
        entry.state = 'ready';
        this.timer.remove(id);
        this.ready.push(id, task.dateMs);
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

  private hold(doc: TaskDoc, task: ParsedTask): void {
    const entry = this.entry(doc, task);
    if (entry.state === 'ready') this.ready.remove(entry.id);
    entry.state = 'held';
    this.timer.add(entry.id, task.dateMs - CLAIM_AHEAD_MS);
  }

  private forget(id: string): void {
    const entry = this.entries.get(id);
    if (entry && (entry.run || entry.state === 'claiming')) return;
    this.timer.remove(id);
    this.ready.remove(id);
    this.entries.delete(id);
  }

  /** Claim the hold: `scheduled` with this instance's lease, valid until the date + lease. */
  private async schedule(doc: TaskDoc, task: ParsedTask): Promise<void> {
    const entry = this.entry(doc, task);
    this.timer.remove(entry.id);
    const expires = Math.max(task.dateMs, this.store.dbNow()) + this.leaseMs;
    const next: TaskDoc = { ...doc, status: 'scheduled', lease: { instance: this.instance, expires_at: iso(expires) } };
    const written = await this.writeTask(entry, next, 'schedule');
    if (!written) return;
    this.hold(written, task);
    this.events.emit('task:scheduled', { id: entry.id, date: iso(task.dateMs) });
    this.afterWrite(entry);
  }

  /** `error` for an invalid task, `canceled` for a cancel. */
  private async writeFinal(doc: TaskDoc, next: TaskDoc, status: 'error' | 'canceled'): Promise<void> {
    const entry = this.entry(doc, undefined);
    const written = await this.writeTask(entry, next, status);
    if (!written) return;
    this.entries.delete(entry.id);
    if (status === 'canceled') this.events.emit('task:canceled', { id: entry.id });
    else this.events.emit('task:invalid', { id: entry.id, message: next.error?.message ?? '' });
  }

  private async markWaiting(doc: TaskDoc): Promise<void> {
    const entry = this.entry(doc, undefined);
    const written = await this.writeTask(entry, { ...doc, status: 'waiting' }, 'mark-waiting');
    if (written) this.forget(entry.id);
  }

  /** Give a held task back to `waiting` so any instance may take it (shutdown). */
  private async handBack(entry: Entry): Promise<void> {
    const { lease: _lease, ...rest } = entry.doc;
    const status = entry.doc.status === 'running' || entry.doc.status === 'scheduled' ? 'waiting' : entry.doc.status;
    const written = await this.writeTask(entry, { ...rest, status } as TaskDoc, 'hand-back');
    this.entries.delete(entry.id);
    if (written) this.events.emit('task:handed-back', { id: entry.id });
  }

  /**
   * One write with the entry's current `_rev`. Returns the written document, or undefined when
   * it lost to another writer: then the task is read again and decided again. A write retried
   * through an outage comes back as a conflict when its first try landed and only the answer
   * was lost: the document read back is then this very write, and it counts as written.
   */
  private async writeTask(entry: Entry, next: TaskDoc, during: WriteReason): Promise<TaskDoc | undefined> {
    entry.busy = true;
    let fresh: TaskDoc | null;
    let contested = false;
    try {
      // A claim is what a job waits for; every other write here can queue behind it, the
      // holds of the tasks due first leaving first.
      const lane = during === 'claim' ? 'run' : 'hold';
      const claim = during === 'claim' || during === 'schedule';
      const result = await this.tracked(this.store.write(next, { lane, claim, neededByMs: entry.task?.dateMs ?? 0 }));
      if (result.ok) {
        entry.doc = result.doc;
        return result.doc;
      }
      if (result.contested) {
        contested = true;
        this.stoodDown.set(entry.id, result.contested.rev);
      }
      fresh = await this.store.get(entry.id);
    } catch (err) {
      // Refused, not a conflict (a validate_doc_update, a permission), or the re-read failed:
      // deciding again at once would send the same write again in a loop. The next window
      // query brings the task back.
      this.options.log.error(`task ${entry.id}: ${during} failed: ${(err as Error).message}; the next window query will find it`);
      this.dropEntry(entry);
      return undefined;
    } finally {
      entry.busy = false;
    }
    if (fresh && !contested && isOwnWrite(fresh, next)) {
      entry.doc = fresh;
      return fresh;
    }
    this.events.emit('task:conflict', { id: entry.id, during });
    this.dropEntry(entry);
    if (fresh) this.apply(fresh);
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

  private onDue(ids: string[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry || entry.state !== 'held' || !entry.task) continue;
      entry.state = 'ready';
      this.ready.push(id, entry.task.dateMs);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopping && this.active < this.concurrency) {
      const id = this.ready.pop();
      if (id === undefined) return;
      const entry = this.entries.get(id);
      if (!entry || entry.state !== 'ready' || entry.busy) continue;
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

  private async claimAndRun(entry: Entry): Promise<void> {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.pump();
    };
    try {
      entry.state = 'claiming';
      const claimed = await this.writeTask(entry, { ...entry.doc, status: 'running', lease: this.freshLease() }, 'claim');
      if (!claimed) return;
      if (this.stopping) {
        // The signal came while the claim was in flight: no new run starts after it.
        await this.handBack(entry);
        return;
      }
      const end = await this.runner.run(entry, release);
      release();
      await this.afterRun(entry, end);
    } finally {
      release();
    }
  }

  /** What the instance does with a task once its run has ended (or never started). */
  private async afterRun(entry: Entry, end: RunEnd): Promise<void> {
    switch (end.kind) {
      case 'not-started':
        entry.state = 'held';
        if (this.stopping) await this.handBack(entry);
        else this.afterWrite(entry);
        return;
      case 'shutdown':
        await this.handBack(entry);
        return;
      case 'recorded':
        this.entries.delete(entry.id);
        if (end.doc.status === 'waiting' && !this.stopping) this.apply(end.doc);
        return;
      case 'abandoned':
        this.forget(entry.id);
        if (end.doc && !this.stopping) this.apply(end.doc);
        return;
    }
  }

  private freshLease(): { instance: string; expires_at: string } {
    return { instance: this.instance, expires_at: iso(this.store.dbNow() + this.leaseMs) };
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

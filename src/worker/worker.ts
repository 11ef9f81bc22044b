/**
 * A worker instance: follower → per-second timer → ready queue → runs, wired together.
 *
 * Every document that comes in (query, feed, re-read) goes through `decide()`; every write is
 * one document write with the current `_rev`, and a conflict means "someone else changed it
 * first": the document is read again and decided again. Writes for one task never overlap.
 */
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { backoffMs, delay, systemClock, type Clock } from '../clock';
import type { AfterConfig } from '../config';
import { AfterError, CouchRequestError } from '../errors';
import { SafeEmitter } from '../events';
import { loadJobs, type JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import { createStore } from '../store/couch-store';
import type { TaskStore } from '../store/types';
import { canceledState, invalidState, nextState } from '../task/next-state';
import type { ParsedTask } from '../task/validate';
import type { RunOutcome, TaskDoc } from '../types';
import { decide, isLease, isOwnWrite, revGeneration, type DecideContext } from './decide';
import { Follower } from './follower';
import { ReadyQueue } from './ready-queue';
import { startRun, type RunHandle } from './run';
import { SecondTimer } from './second-timer';

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

export interface WorkerEvents extends Record<string, unknown> {
  'worker:ready': { instance: string; since: string };
  'worker:stopped': { instance: string };
  'task:scheduled': { id: string; date: string };
  'task:started': { id: string; job: string; lateMs: number };
  'task:finished': { id: string; status: string; durationMs: number; error?: string; date?: string };
  'task:invalid': { id: string; message: string };
  'task:canceled': { id: string };
  'task:conflict': { id: string; during: string };
  'task:handed-back': { id: string };
}

type EntryState = 'held' | 'ready' | 'claiming' | 'running';

interface Entry {
  id: string;
  doc: TaskDoc;
  task: ParsedTask | undefined;
  state: EntryState;
  /** A write or re-read of this task is in flight. */
  busy: boolean;
  /** The newest document seen while busy, applied afterwards. */
  pending: TaskDoc | undefined;
  run: RunHandle | undefined;
  /** The lease heartbeat in flight: the finish write waits for it, so the two never race on one `_rev`. */
  leaseWrite: Promise<void> | undefined;
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

export class Worker {
  readonly instance: string;
  readonly events = new SafeEmitter<WorkerEvents>();
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;

  private readonly entries = new Map<string, Entry>();
  private readonly ready = new ReadyQueue();
  private readonly timer: SecondTimer;
  private readonly follower: Follower;
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private active = 0;
  private stopping = false;
  private resolveDone!: () => void;
  private readonly runsSettled = new Set<Promise<void>>();
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
      if (entry.run) return this.updateRun(entry, doc);
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
    const decision = decide(doc, this.context());
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

  private entry(doc: TaskDoc, task: ParsedTask | undefined): Entry {
    let entry = this.entries.get(doc._id);
    if (!entry) {
      entry = { id: doc._id, doc, task, state: 'held', busy: false, pending: undefined, run: undefined, leaseWrite: undefined };
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
    const written = await this.write(entry, next, 'schedule');
    if (!written) return;
    this.hold(written, task);
    this.events.emit('task:scheduled', { id: entry.id, date: iso(task.dateMs) });
    this.afterWrite(entry);
  }

  /** `error` for an invalid task, `canceled` for a cancel. */
  private async writeFinal(doc: TaskDoc, next: TaskDoc, status: 'error' | 'canceled'): Promise<void> {
    const entry = this.entry(doc, undefined);
    const written = await this.write(entry, next, status);
    if (!written) return;
    this.entries.delete(entry.id);
    if (status === 'canceled') this.events.emit('task:canceled', { id: entry.id });
    else this.events.emit('task:invalid', { id: entry.id, message: next.error?.message ?? '' });
  }

  private async markWaiting(doc: TaskDoc): Promise<void> {
    const entry = this.entry(doc, undefined);
    const written = await this.write(entry, { ...doc, status: 'waiting' }, 'mark-waiting');
    if (written) this.forget(entry.id);
  }

  /** Give a held task back to `waiting` so any instance may take it (shutdown). */
  private async handBack(entry: Entry): Promise<void> {
    const { lease: _lease, ...rest } = entry.doc;
    const status = entry.doc.status === 'running' || entry.doc.status === 'scheduled' ? 'waiting' : entry.doc.status;
    const written = await this.write(entry, { ...rest, status } as TaskDoc, 'hand-back');
    this.entries.delete(entry.id);
    if (written) this.events.emit('task:handed-back', { id: entry.id });
  }

  /**
   * One write with the entry's current `_rev`. Returns the written document, or undefined when
   * it lost to another writer — then the document is read and decided again.
   */
  private async write(entry: Entry, next: TaskDoc, during: string): Promise<TaskDoc | undefined> {
    entry.busy = true;
    try {
      const result = await this.tracked(this.store.write(next));
      if (result.ok) {
        entry.doc = result.doc;
        return result.doc;
      }
      this.events.emit('task:conflict', { id: entry.id, during });
    } catch (err) {
      // Refused, not a conflict (a validate_doc_update, a permission): deciding again at once
      // would send the same write again in a loop. The next window query brings it back.
      this.options.log.error(`task ${entry.id}: ${during} write failed: ${(err as Error).message}`);
      entry.busy = false;
      this.forget(entry.id);
      return undefined;
    } finally {
      entry.busy = false;
    }
    await this.reread(entry);
    return undefined;
  }

  private tracked<T>(write: Promise<T>): Promise<T> {
    this.writesInFlight.add(write);
    void write.catch(() => undefined).finally(() => this.writesInFlight.delete(write));
    return write;
  }

  /** After a lost write: read the task again and decide again. */
  private async reread(entry: Entry): Promise<void> {
    if (entry.run) return;
    let fresh: TaskDoc | null;
    try {
      fresh = await this.store.get(entry.id);
    } catch (err) {
      this.options.log.warn(`task ${entry.id}: re-read failed (${(err as Error).message}); the next window query will find it`);
      this.forget(entry.id);
      return;
    }
    this.forget(entry.id);
    if (fresh) this.apply(fresh);
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
      const claim: TaskDoc = { ...entry.doc, status: 'running', lease: this.freshLease() };
      const claimed = await this.claim(entry, claim);
      if (!claimed) return;
      if (this.stopping) {
        // The signal came while the claim was in flight: no new run starts after it.
        await this.handBack(entry);
        return;
      }
      const task = entry.task!;
      if (!(await this.untilDate(entry, task.dateMs))) return;
      const job = this.jobs.resolve(task.job.name)!;
      const log = this.options.log.child({ component: `task ${entry.id}` });
      const timeoutMs = task.timeoutMs ?? (this.options.config.worker.timeout_ms || undefined);
      entry.state = 'running';
      const run = startRun({
        job,
        doc: entry.doc,
        timeoutMs,
        clock: this.clock,
        log,
        heartbeat: () => this.extendLease(entry),
        heartbeatEveryMs: Math.max(100, Math.floor(this.leaseMs / 3)),
      });
      entry.run = run;
      const lateMs = run.startedAtMs - task.dateMs;
      this.events.emit('task:started', { id: entry.id, job: task.job.name, lateMs });
      this.afterWrite(entry);
      const outcome = await run.outcome;
      release();
      await this.finish(entry, task, run, outcome);
    } finally {
      release();
    }
  }

  private async claim(entry: Entry, claim: TaskDoc): Promise<boolean> {
    entry.busy = true;
    try {
      const result = await this.tracked(this.store.write(claim));
      if (result.ok) {
        entry.doc = result.doc;
        return true;
      }
      // A write retried through an outage comes back as a conflict when its first try landed
      // and only the answer was lost: then the claim is ours.
      const fresh = await this.store.get(entry.id);
      if (fresh && isOwnWrite(fresh, claim)) {
        entry.doc = fresh;
        return true;
      }
      this.events.emit('task:conflict', { id: entry.id, during: 'claim' });
      entry.state = 'held';
      this.forget(entry.id);
      if (fresh) this.apply(fresh);
      return false;
    } catch (err) {
      // Refused (see write()): left to the next window query rather than claimed again at once.
      this.options.log.error(`task ${entry.id}: claim failed: ${(err as Error).message}`);
      entry.busy = false;
      entry.state = 'held';
      this.forget(entry.id);
      return false;
    } finally {
      entry.busy = false;
    }
  }

  /**
   * Claimed ahead of the date: wait for the date itself (never early). A newer version of the
   * task seen meanwhile (a cancel, a reschedule) is decided instead of starting the job.
   */
  private async untilDate(entry: Entry, dateMs: number): Promise<boolean> {
    entry.busy = true;
    try {
      for (let wait = dateMs - this.clock.now(); wait > 0 && !this.stopping; wait = dateMs - this.clock.now()) {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, wait));
      }
    } finally {
      entry.busy = false;
    }
    const changed = entry.pending !== undefined && isNewer(entry.pending, entry.doc);
    if (!this.stopping && !changed) return true;
    entry.state = 'held';
    if (this.stopping) await this.handBack(entry);
    else this.afterWrite(entry);
    return false;
  }

  private freshLease(): { instance: string; expires_at: string } {
    return { instance: this.instance, expires_at: iso(this.store.dbNow() + this.leaseMs) };
  }

  /** The heartbeat: one write moving `lease.expires_at` on, unless one is still in flight. */
  private extendLease(entry: Entry): Promise<void> {
    if (entry.leaseWrite || !entry.run || entry.run.abortReason) return Promise.resolve();
    const write = this.writeLease(entry).finally(() => {
      entry.leaseWrite = undefined;
    });
    entry.leaseWrite = write;
    return write;
  }

  private async writeLease(entry: Entry): Promise<void> {
    const sent: TaskDoc = { ...entry.doc, lease: this.freshLease() };
    const result = await this.tracked(this.store.write(sent));
    if (result.ok) {
      if (isNewer(result.doc, entry.doc)) entry.doc = result.doc;
      return;
    }
    // Someone wrote the task while it ran: a cancel, a delete, or (after an outage longer than
    // the lease) another instance that took the run over.
    const fresh = await this.store.get(entry.id);
    if (fresh && isOwnWrite(fresh, sent)) {
      entry.doc = fresh;
      return;
    }
    if (!entry.run) return;
    if (!fresh) entry.run.abort('deleted');
    else this.updateRun(entry, fresh);
  }

  /** A newer version of a task this instance is running. */
  private updateRun(entry: Entry, doc: TaskDoc): void {
    const run = entry.run;
    if (!run) return;
    if (doc._deleted) {
      run.abort('deleted');
      return;
    }
    entry.doc = doc;
    const mine = isLease(doc.lease) && doc.lease.instance === this.instance;
    if (doc.status === 'cancel') run.abort('cancel');
    else if (doc.status !== 'running' || !mine) run.abort('taken-over');
  }

  private async finish(entry: Entry, task: ParsedTask, run: RunHandle, outcome: RunOutcome): Promise<void> {
    const id = entry.id;
    const finishedAtMs = this.clock.now();
    // A heartbeat still in flight (the database away, say) goes first: the finish is written
    // on the `_rev` it leaves, and it may have learnt that the run was taken over meanwhile.
    await entry.leaseWrite?.catch(() => undefined);
    const reason = run.abortReason;
    if (reason === 'deleted' || reason === 'taken-over') {
      this.options.log.warn(`task ${id}: run abandoned (${reason === 'deleted' ? 'the task was deleted' : 'another writer changed the task'})`);
      entry.run = undefined;
      this.forget(id);
      if (reason === 'taken-over' && !this.stopping) this.apply(entry.doc);
      return;
    }
    if (reason === 'shutdown') {
      entry.run = undefined;
      await this.handBack(entry);
      return;
    }
    const runRecord = { startedAtMs: run.startedAtMs, finishedAtMs, worker: this.options.name, instance: this.instance };
    let result = outcome;
    for (let attempt = 0; ; attempt++) {
      const next = nextState(entry.doc, task, result, runRecord, { historyLimit: this.options.config.worker.history_limit });
      let written: TaskDoc | undefined;
      try {
        entry.busy = true;
        const response = await this.tracked(this.store.write(next));
        if (response.ok) written = response.doc;
      } catch (err) {
        this.options.log.error(`task ${id}: could not record the run: ${(err as Error).message}`);
        entry.run = undefined;
        this.forget(id);
        return;
      } finally {
        entry.busy = false;
      }
      // Lost the finish write: someone changed the task while it ran, or the write landed
      // during an outage and only its answer was lost.
      const fresh = written ? undefined : await this.getWithRetry(id);
      if (fresh && isOwnWrite(fresh, next)) written = fresh;
      if (written) {
        entry.run = undefined;
        this.entries.delete(id);
        this.events.emit('task:finished', {
          id,
          status: String(written.status),
          durationMs: runRecord.finishedAtMs - runRecord.startedAtMs,
          ...(written.status === 'waiting' ? { date: String(written.date) } : {}),
          ...(result.kind === 'failure' ? { error: result.error.message } : {}),
        });
        if (written.status === 'waiting' && !this.stopping) this.apply(written);
        return;
      }
      const mine = fresh && isLease(fresh.lease) && fresh.lease.instance === this.instance;
      if (fresh && fresh.status === 'running' && mine && attempt < 5) {
        entry.doc = fresh;
        continue;
      }
      if (fresh && fresh.status === 'cancel' && (mine || !isLease(fresh.lease)) && attempt < 5) {
        entry.doc = fresh;
        result = { kind: 'canceled' };
        continue;
      }
      this.options.log.warn(`task ${id}: the run ended but another writer had changed the task; its result is not recorded`);
      entry.run = undefined;
      this.forget(id);
      if (fresh && !this.stopping) this.apply(fresh);
      return;
    }
  }

  private async getWithRetry(id: string): Promise<TaskDoc | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.get(id);
      } catch (err) {
        if (!(err instanceof CouchRequestError) || !err.transient || attempt > 20) throw err;
        await delay(backoffMs(attempt));
      }
    }
  }
}

/** Load jobs, connect (waiting for the database if it is away), start following. */
export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const { config, log } = options;
  const jobsDir = options.jobsDir ?? config.jobs;
  const jobs = options.jobs ?? (await loadJobs(jobsDir, { builtins: config.builtins }));
  if (jobs.problems.length > 0) {
    throw new AfterError('E_JOBS', `jobs folder ${jobsDir} has problems: ${jobs.problems.map((p) => p.message).join('; ')}`);
  }
  const store = options.store ?? (await connectWithRetry(config, log));
  const worker = new Worker(options, store, jobs);
  attachLogging(worker, log);
  try {
    await worker.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  log.info(
    `worker ${options.name} ready (instance ${worker.instance}, ${store.server.kind} ${store.server.version}, ` +
      `${jobs.names().length} jobs, concurrency ${options.concurrency ?? config.worker.concurrency})`,
  );
  return worker;
}

async function connectWithRetry(config: AfterConfig, log: Logger): Promise<TaskStore> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await createStore(config, { log, retry: 'forever' });
    } catch (err) {
      if (!(err instanceof CouchRequestError) || !err.transient) throw err;
      const wait = backoffMs(attempt, 500, 10_000);
      log.warn(`${err.message}; retrying in ${Math.round(wait / 100) / 10} s`);
      await delay(wait);
    }
  }
}

function attachLogging(worker: Worker, log: Logger): void {
  const { events } = worker;
  events.on('task:scheduled', (e) => log.info(`task ${e.id} scheduled for ${e.date}`));
  events.on('task:started', (e) => log.info(`task ${e.id} running (job ${e.job}, ${describeLateness(e.lateMs)})`));
  events.on('task:finished', (e) => {
    const how = e.status === 'waiting' ? `waiting, next run at ${e.date}` : e.status;
    const why = e.error ? `: ${e.error}` : '';
    const line = `task ${e.id} ${how} after ${e.durationMs} ms${why}`;
    if (e.status === 'error') log.error(line);
    else log.info(line);
  });
  events.on('task:invalid', (e) => log.error(`task ${e.id} error: ${e.message}`));
  events.on('task:canceled', (e) => log.info(`task ${e.id} canceled`));
  events.on('task:handed-back', (e) => log.info(`task ${e.id} handed back (waiting)`));
  events.on('task:conflict', (e) => log.debug(`task ${e.id}: changed by another writer during ${e.during}; deciding again`));
}

/** Waits for `promise` at most `ms`; true when it settled in time. Leaves no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A user's reschedule starts a repeat series again from the new date: the old anchor goes
 * with the next write (the `scheduled` hold or the claim), so later dates follow the new one.
 */
function restartedSeries(doc: TaskDoc): TaskDoc {
  if (doc.status !== 'reschedule' || !('anchor_date' in doc)) return doc;
  const { anchor_date: _oldAnchor, ...rest } = doc;
  return rest as TaskDoc;
}

/** "12 ms after its date", or for a task found long overdue "overdue by 3 d 4 h". */
export function describeLateness(lateMs: number): string {
  if (lateMs < 60_000) return `${lateMs} ms after its date`;
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]];
  const first = units.findIndex(([, size]) => lateMs >= size);
  const [bigName, bigSize] = units[first]!;
  const parts = [`${Math.floor(lateMs / bigSize)} ${bigName}`];
  const next = units[first + 1];
  if (next) {
    const count = Math.floor((lateMs % bigSize) / next[1]);
    if (count > 0) parts.push(`${count} ${next[0]}`);
  }
  return `overdue by ${parts.join(' ')}`;
}

function isNewer(incoming: TaskDoc, known: TaskDoc): boolean {
  if (incoming._rev === known._rev) return false;
  return revGeneration(incoming._rev) >= revGeneration(known._rev);
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


/**
 * The life of a task in a worker instance, top to bottom:
 *
 *   1. take     documents come in: the feed, the window queries, the lease sweep, a read-back
 *   2. decide   what this instance does with each one (task/decide.ts): hold it, schedule it,
 *               give a verdict, wait for its dependencies, take an expired run over
 *   3. hold     held tasks wait in the per-second timer; at their claim time they are due
 *   4. claim    due tasks, as many as there are free run slots, claimed in one bulk write
 *   5. run      each claimed task's job at its date, its lease renewed while it runs
 *   6. finish   each run's outcome written (task/next-state.ts), beside the next wave's claims
 *
 * A HeldTask (held-task.ts) is the state of one task here, changed only through its own
 * transitions; this file moves tasks from stage to stage and makes their writes through the
 * store, which batches the writes of one turn into `_bulk_docs` requests. Stages take and
 * return arrays: a burst of 3,000 due tasks is a few requests, not 6,000.
 *
 * What comes from beside the pipeline — the live instances changed, the worker name was paused
 * or resumed, a user's request, a dependency changed — enters through the methods at the end.
 */
import { within, type Clock } from '../clock';
import type { LimitConfig } from '../config';
import { UnknownJobError } from '../errors';
import type { SafeEmitter } from '../events';
import type { JobFunction } from '../jobs/run-job';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import type { TaskRequest } from '../store/control';
import type { ControlStore, TaskStore, WriteOutcome } from '../store/types';
import { decide, isLease, leasedBy, type DecideContext, type Decision } from '../task/decide';
import type { DependencyLookup } from '../task/dependencies';
import type { ParsedTask } from '../task/validate';
import * as writes from '../task/writes';
import { isUrgent, takesHold, type Transition, type WriteContext } from '../task/writes';
import type { RunOutcome, TaskDoc } from '../types';
import type { WorkerEvents } from './events';
import { describeLease, type HeldTask, type Missed } from './held-task';
import { HeldTasks } from './held-tasks';
import { carryOutRequest, isResponsible, requestStep, WaitingRequests } from './peers/requests';
import { startRun, type JobRun } from './running/job-run';
import { LeaseRenewals } from './running/lease-renewals';
import { untilStart, type StartGateParts, type StartVerdict } from './running/start-gate';
import { BackupWindow } from './timing/backup-window';
import { FlowQueue } from './timing/flow-queue';
import { SecondTimer } from './timing/second-timer';

/**
 * A job may start only once its claim (the `running` write) is won, and that write takes ~10 ms
 * at p50 and 40 ms or more at p99 on pouchdb-server (bench W2, raw). So a task of this
 * instance's share is due this long before its date, the claim is written meanwhile, and the
 * job starts at the date itself: lateness becomes the timer's, not the database's.
 */
export const CLAIM_AHEAD_MS = 250;
/** How long a task may be due ahead before it is worth a `scheduled` write. */
const DUE_SOON_MS = 1000;
/** Finish writes tried again when the task changed under the run in a way the run answers. */
const FINISH_TRIES = 6;

/** What the pipeline reads of the live instances and the worker name's pause (peers/control-link.ts). */
export interface Peers {
  /** Task `id` is this instance's share. */
  owns(id: string): boolean;
  readonly paused: boolean;
  readonly live: readonly string[];
  /** `instance` let a run lease expire: count it gone now. */
  suspect(instance: string): void;
}

/** What the pipeline asks of the tasks waited for (intake/dependency-watch.ts). */
export interface Dependencies {
  readonly lookup: DependencyLookup;
  watch(taskId: string, ids: readonly string[]): void;
  unwatch(taskId: string): void;
}

/** The settings a reload may change. */
export interface PipelineSettings {
  concurrency: number;
  horizonMs: number;
  minRepeatMs: number;
  /** The default job timeout; 0 for none. */
  timeoutMs: number;
  historyLimit: number;
}

export interface PipelineOptions {
  worker: string;
  instance: string;
  store: Pick<TaskStore, 'write' | 'getMany' | 'dbNow'>;
  /** Where users' requests are removed once carried out. */
  control: Pick<ControlStore, 'remove'>;
  clock: Clock;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  peers: Peers;
  dependencies: Dependencies;
  /** config `limits`: rate and concurrency limits of worker names and jobs. */
  limits: Readonly<Record<string, LimitConfig>>;
  leaseMs: number;
  /** How long past its date another instance's task waits before this one claims it. */
  graceMs: number;
  settings: PipelineSettings;
  jobs: JobRegistry;
}

/** A write of a held task, as the pipeline sends it. */
interface Planned {
  task: HeldTask;
  transition: Transition;
  doc: TaskDoc;
}

export class Pipeline {
  private readonly tasks: HeldTasks;
  private readonly timer: SecondTimer;
  private readonly ready: FlowQueue;
  private readonly renewals: LeaseRenewals;
  private readonly backups = new BackupWindow();
  private backupsTimer: NodeJS.Timeout | undefined;
  private readonly requests = new WaitingRequests();
  /** Task id → its run, settling once the run's end has been written and acted on. */
  private readonly runs = new Map<string, Promise<void>>();
  /** Claims and runs under way (a stop waits for them). */
  private readonly working = new Set<Promise<void>>();
  /** Writes in flight (a stop decides on what the database really holds). */
  private readonly writesInFlight = new Set<Promise<unknown>>();
  private slotsInUse = 0;
  private stopping = false;
  private readonly startGate: StartGateParts;
  private settings: PipelineSettings;
  private jobs: JobRegistry;

  constructor(private readonly options: PipelineOptions) {
    this.tasks = new HeldTasks(options.instance);
    this.ready = new FlowQueue({
      worker: options.worker,
      instance: options.instance,
      limits: options.limits,
      clock: options.clock,
      claimAheadMs: CLAIM_AHEAD_MS,
      onAvailable: () => queueMicrotask(() => this.claimDue()),
      onThrottled: (id, limit, waitedMs) => options.events.emit('task:throttled', { id, limit, waitedMs }),
    });
    this.settings = options.settings;
    this.jobs = options.jobs;
    this.timer = new SecondTimer(options.clock, (ids) => this.due(ids));
    this.startGate = {
      clock: options.clock,
      stopping: () => this.stopping,
      paused: () => options.peers.paused,
      hasRequest: (id) => this.requests.has(id),
      startWaitMs: (id) => this.ready.startWaitMs(id),
    };
    this.renewals = new LeaseRenewals(options.clock, Math.max(100, Math.floor(options.leaseMs / 3)), (ids) => this.renew(ids));
  }

  /** Tasks held (in the timer, due, claimed, running...). */
  get heldCount(): number {
    return this.tasks.size;
  }

  /** Run slots in use: tasks being claimed or run. */
  get runningCount(): number {
    return this.slotsInUse;
  }

  /** Due tasks waiting for a rate or concurrency limit (config `limits`), as of the last try. */
  get throttledCount(): number {
    return this.ready.throttledCount;
  }

  /** This worker name has limits (config `limits`). */
  get limited(): boolean {
    return this.ready.limited;
  }

  heldByStatus(): Map<string, number> {
    return this.tasks.byStatus();
  }

  // ── 1. take ────────────────────────────────────────────────────────────────────────────

  /** Documents from anywhere: each one newer than what is known is decided (now, or once its task is idle). */
  take(docs: readonly TaskDoc[]): void {
    const nowMs = this.options.clock.now();
    const toDecide: TaskDoc[] = [];
    for (const doc of docs) {
      const task = this.tasks.get(doc._id);
      if (!task) {
        if (!this.tasks.isStale(doc, nowMs)) toDecide.push(doc);
        continue;
      }
      const seen = task.observe(doc);
      if (seen.kind === 'decide') toDecide.push(doc);
      else if (seen.kind === 'renew') this.renew([task.id]);
    }
    this.decide(toDecide);
  }

  // ── 2. decide ──────────────────────────────────────────────────────────────────────────

  /** What this instance does with each document, carried out; the writes it asks for go as one batch. */
  private decide(docs: readonly TaskDoc[]): void {
    if (this.stopping || docs.length === 0) return;
    const ctx = this.decideContext();
    const planned: Planned[] = [];
    for (const doc of docs) {
      if (this.tasks.isStoodDown(doc, ctx.nowMs)) continue;
      const decision = decide(doc, ctx);
      if (decision.kind !== 'wait-for') this.options.dependencies.unwatch(doc._id);
      const write = this.carryOut(doc, decision);
      if (write) planned.push(write);
    }
    if (planned.length > 0) this.track(this.writeAndSettle(planned));
    this.claimDue();
  }

  /** One decision carried out; the write it asks for, if any. */
  private carryOut(doc: TaskDoc, decision: Decision): Planned | undefined {
    const id = doc._id;
    switch (decision.kind) {
      case 'drop':
        this.forget(id);
        return undefined;
      case 'own-run':
        // Mostly the feed's late echo of this instance's own claim. A claim that landed with its
        // answer lost is recognised by the store; one this instance lost track of otherwise has
        // its lease expire, and the sweep takes it over (decide: an expired own lease).
        return undefined;
      case 'mark-waiting':
        return this.plan(doc, 'mark-waiting', writes.markWaiting(doc));
      case 'invalid':
        return this.plan(doc, 'invalid', writes.invalid(doc, decision.field, decision.message));
      case 'cancel':
        return this.plan(doc, 'cancel', writes.cancel(doc));
      case 'dependency-failed':
        return this.plan(doc, 'dependency-failed', writes.dependencyFailed(doc, decision.message));
      default:
        break;
    }
    const parsed = decision.task;
    if (!this.jobs.resolve(parsed.job.name)) {
      const message = `job.name: unknown job ${quote(parsed.job.name)} (not found in the jobs folder ${this.jobs.dir})`;
      return this.plan(doc, 'invalid', writes.invalid(doc, 'job.name', message));
    }
    switch (decision.kind) {
      case 'hold':
        this.hold(doc, parsed, decision.backup);
        return undefined;
      case 'keep':
        this.hold(doc, parsed, false);
        return undefined;
      case 'schedule': {
        const task = this.idleTask(doc);
        return { task, transition: 'schedule', doc: task.schedule(doc, parsed, this.writeContext()) };
      }
      case 'wait-for': {
        // Out of the timer until its dependencies change (dependency-watch.ts).
        this.idleTask(doc).block(doc, parsed);
        this.options.dependencies.watch(id, decision.watch);
        return undefined;
      }
      case 'take-over-run':
        return this.takeOver(doc, parsed, decision.backup);
    }
  }

  /** A run whose holder's lease expired: claimed again at once (at least once), or as a backup past its grace. */
  private takeOver(doc: TaskDoc, parsed: ParsedTask, backup: boolean): Planned | undefined {
    const { peers } = this.options;
    if (backup && isLease(doc.lease) && peers.live.includes(doc.lease.instance)) {
      // Its holder let the lease run out: it is gone, whatever its last heartbeat says. The
      // tasks of its share (this one perhaps) are split among the others at once.
      peers.suspect(doc.lease.instance);
      if (!peers.live.includes(doc.lease.instance)) {
        this.decide([doc]);
        return undefined;
      }
    }
    if (backup) {
      // Another instance's share: its owner takes the run over at once; this one only if the
      // run is still not taken a grace period later.
      this.hold(doc, parsed, true, this.options.clock.now());
      return undefined;
    }
    this.options.log.warn(`task ${doc._id}: the lease of ${describeLease(doc)} expired; taking the run over`);
    const task = this.idleTask(doc);
    this.timer.remove(task.id);
    task.hold(doc, parsed, false);
    this.makeDue(task);
    return undefined;
  }

  // ── 3. hold ────────────────────────────────────────────────────────────────────────────

  /**
   * Held in memory until its claim time: this instance's share a little before its date, a
   * backup once its grace has passed (from `fromMs`, by default the date).
   */
  private hold(doc: TaskDoc, parsed: ParsedTask, backup: boolean, fromMs = parsed.dueMs): void {
    const task = this.idleTask(doc);
    task.hold(doc, parsed, backup);
    this.timer.add(task.id, backup ? fromMs + this.options.graceMs : parsed.dueMs - CLAIM_AHEAD_MS);
  }

  /** The timer: held tasks whose claim time has come. */
  private due(ids: readonly string[]): void {
    for (const id of ids) {
      const task = this.tasks.get(id);
      if (task?.becomeDue()) this.queue(task);
    }
    this.claimDue();
  }

  /** Due now, without waiting for the timer (a run taken over). */
  private makeDue(task: HeldTask): void {
    if (task.becomeDue()) this.queue(task);
  }

  private queue(task: HeldTask): void {
    const parsed = task.task!;
    this.ready.push(task.id, { dueMs: parsed.dueMs, backup: task.backup, priority: parsed.priority }, parsed.job.name);
  }

  // ── 4. claim ───────────────────────────────────────────────────────────────────────────

  /** Due tasks leave the ready queue while a run slot is free, the name is not paused and the instance not stopping: one claim write for them all. */
  claimDue(): void {
    const { clock, peers } = this.options;
    const wave: HeldTask[] = [];
    while (!this.stopping && !peers.paused && this.slotsInUse < this.settings.concurrency) {
      const id = this.ready.pop();
      if (id === undefined) break;
      const task = this.tasks.get(id);
      if (!task || task.phase !== 'due') {
        // Popped, so its limits reserved room for it: given back.
        this.ready.release(id);
        continue;
      }
      if (task.backup && !this.backups.open(clock.now())) {
        // Backups come after every task of our own: nothing of ours waits either.
        this.ready.release(id);
        this.queue(task);
        this.resumeBackupsLater();
        break;
      }
      this.slotsInUse += 1;
      if (task.backup) this.backups.claimSent();
      wave.push(task);
    }
    if (wave.length > 0) this.work(this.claim(wave));
  }

  private async claim(wave: readonly HeldTask[]): Promise<void> {
    const ctx = this.writeContext();
    const backups = wave.map((task) => task.backup);
    const outcomes = await this.send(wave.map((task) => ({ task, transition: 'claim', doc: task.claim(ctx) })));
    const nowMs = this.options.clock.now();
    wave.forEach((task, index) => {
      const missed = task.claimed(outcomes[index]!);
      if (backups[index]) this.backups.claimAnswered(!missed, nowMs, this.settings.concurrency, this.options.graceMs);
      this.afterWrite(task);
      if (missed) {
        this.freeSlot(task.id);
        this.missed(task, 'claim', missed);
        return;
      }
      this.options.events.emit('task:claimed', { id: task.id });
      const run = this.run(task);
      this.runs.set(task.id, run);
      this.work(run.finally(() => this.runs.delete(task.id)));
    });
  }

  // ── 5. run ─────────────────────────────────────────────────────────────────────────────

  /** A claimed task: its date (never early), its limits, its job, its finish. The slot is free as soon as the job has ended. */
  private async run(task: HeldTask): Promise<void> {
    let slotFree = false;
    const freeSlot = (): void => {
      if (slotFree) return;
      slotFree = true;
      this.freeSlot(task.id);
    };
    try {
      const verdict = await untilStart(task, this.startGate);
      if (verdict !== 'start') return await this.notStarted(task, verdict);
      const run = this.startJob(task);
      const outcome = await run.outcome;
      freeSlot();
      await this.finish(task, run, outcome);
    } finally {
      freeSlot();
    }
  }

  /** A claimed run that does not start (start-gate.ts says why): what comes instead. */
  private async notStarted(task: HeldTask, verdict: Exclude<StartVerdict, 'start'>): Promise<void> {
    if (verdict === 'paused') return this.pausedBeforeStart(task);
    task.release();
    switch (verdict) {
      case 'request':
        return this.serveRequest(task.id);
      case 'overtaken':
        return this.decideNewer(task);
      case 'no-room':
        this.options.log.info(`task ${task.id}: its rate limit has no room now; handing it back`);
        return this.handBack(task);
      case 'stopping':
        return this.handBack(task);
    }
  }

  private startJob(task: HeldTask): JobRun {
    const { clock, log, events } = this.options;
    const parsed = task.task!;
    // A reload may have taken the job away since the task was claimed.
    const job: JobFunction = this.jobs.resolve(parsed.job.name) ?? (() => Promise.reject(new UnknownJobError(parsed.job.name)));
    const run = startRun({
      job,
      doc: task.doc,
      timeoutMs: parsed.timeoutMs ?? (this.settings.timeoutMs || undefined),
      clock,
      log: () => log.child({ component: `task ${task.id}` }),
    });
    task.start(run);
    // Counted once the job has been called, so the job's own clock read comes first.
    this.ready.started(task.id);
    this.renewals.track(task.id);
    events.emit('task:started', { id: task.id, job: parsed.job.name, lateMs: run.startedAtMs - parsed.dueMs });
    return run;
  }

  /**
   * The worker name was paused between the claim (written ahead of the date) and the date: no
   * run starts. The task goes back to `waiting`, held here until the resume.
   */
  private async pausedBeforeStart(task: HeldTask): Promise<void> {
    task.release();
    const [outcome] = await this.send([{ task, transition: 'hand-back', doc: task.write('hand-back', writes.handBack(task.doc)) }]);
    const missed = task.wrote(outcome!);
    this.afterWrite(task);
    if (missed) return this.missed(task, 'hand-back', missed);
    this.options.events.emit('task:handed-back', { id: task.id });
    if (this.stopping) return this.tasks.delete(task.id);
    this.decide([task.takeNewer() ?? task.doc]);
  }

  /** Renew the leases of these running tasks (a third of the lease since the last), in one write. */
  private renew(ids: readonly string[]): void {
    const ctx = this.writeContext();
    const planned: Planned[] = [];
    for (const id of ids) {
      const task = this.tasks.get(id);
      const doc = task?.renew(ctx);
      if (task && doc) planned.push({ task, transition: 'renew', doc });
    }
    if (planned.length === 0) return;
    this.track(
      this.send(planned).then((outcomes) => {
        planned.forEach(({ task }, index) => {
          const seen = task.renewed(outcomes[index]!);
          if (seen.kind === 'failed') this.options.log.warn(`lease renewal of task ${task.id} failed: ${seen.error.message}`);
          else if (seen.kind === 'renew') this.renew([task.id]);
          if (task.phase === 'running' && !task.run?.ended) this.renewals.track(task.id);
        });
      }),
    );
  }

  // ── 6. finish ──────────────────────────────────────────────────────────────────────────

  /** The run's outcome written (done, error, or waiting for its next date), then what follows. */
  private async finish(task: HeldTask, run: JobRun, outcome: RunOutcome): Promise<void> {
    const { clock, log, events, worker, instance } = this.options;
    const finishedAtMs = clock.now();
    this.renewals.untrack(task.id);
    // A renewal still in flight (the database away, say) goes first: the finish is written on
    // the `_rev` it leaves, and it may have learnt that the run was taken over meanwhile.
    await task.renewing;
    const reason = run.abortReason;
    if (reason === 'shutdown') {
      task.abandoned();
      return this.handBack(task);
    }
    if (reason === 'deleted' || reason === 'taken-over') {
      log.warn(`task ${task.id}: run abandoned (${reason === 'deleted' ? 'the task was deleted' : 'another writer changed the task'})`);
      const newest = task.doc;
      task.abandoned();
      return this.letGoOfRun(task, reason === 'taken-over' ? newest : null);
    }
    const record = { startedAtMs: run.startedAtMs, finishedAtMs, worker, instance };
    for (let attempt = 1; ; attempt++) {
      const { doc, result } = task.finish(outcome, record, { historyLimit: this.settings.historyLimit });
      const [written] = await this.send([{ task, transition: 'finish', doc }]);
      if (written!.kind === 'written') {
        task.finished(written!);
        this.afterWrite(task);
        events.emit('task:finished', {
          id: task.id,
          status: String(task.doc.status),
          durationMs: finishedAtMs - run.startedAtMs,
          outcome: result.kind,
          ...(task.doc.status === 'waiting' ? { date: String(task.doc.run_now ?? task.doc.date) } : {}),
          ...(result.kind === 'failure' || result.kind === 'retry' ? { error: result.error.message } : {}),
        });
        return this.letGoAfterFinish(task);
      }
      if (written!.kind === 'failed') {
        log.error(`task ${task.id}: could not record the run: ${written!.error.message}`);
        task.finished(written!);
        this.afterWrite(task);
        return this.letGoOfRun(task, null);
      }
      // Lost the finish write: someone changed the task while it ran.
      if (attempt < FINISH_TRIES && task.finishAgainOn(written!.fresh) !== 'no') continue;
      log.warn(`task ${task.id}: the run ended but another writer had changed the task; its result is not recorded`);
      task.finished(written!);
      this.afterWrite(task);
      return this.letGoOfRun(task, written!.fresh);
    }
  }

  /** The finish is written: the task is let go, and a repeat or a retry decided like any new document. */
  private letGoAfterFinish(task: HeldTask): void {
    const written = task.doc;
    const newer = task.takeNewer();
    this.tasks.letGoAfter(written, this.options.clock.now());
    if (!this.stopping) {
      if (newer) this.decide([newer]);
      else if (written.status === 'waiting') this.decide([written]);
    }
    this.serveRequest(task.id);
  }

  /** The run is over without its result written: let go, and `newest` (if any) decided. */
  private letGoOfRun(task: HeldTask, newest: TaskDoc | null): void {
    this.forget(task.id);
    if (newest && !this.stopping) this.decide([newest]);
    this.serveRequest(task.id);
  }

  // ── Writes ─────────────────────────────────────────────────────────────────────────────

  /** Writes of idle tasks (schedules, verdicts, mark-waiting), sent together; each outcome acted on. */
  private async writeAndSettle(planned: readonly Planned[]): Promise<void> {
    const outcomes = await this.send(planned);
    planned.forEach(({ task, transition }, index) => {
      const missed = task.wrote(outcomes[index]!);
      this.afterWrite(task);
      if (missed) return this.missed(task, transition, missed);
      this.wrote(task, transition);
    });
    this.claimDue();
  }

  /** A write of an idle task landed: where the task goes next. */
  private wrote(task: HeldTask, transition: Transition): void {
    const { events } = this.options;
    switch (transition) {
      case 'schedule': {
        const parsed = task.task!;
        task.hold(task.doc, parsed, false);
        this.timer.add(task.id, parsed.dueMs - CLAIM_AHEAD_MS);
        events.emit('task:scheduled', { id: task.id, date: new Date(parsed.dueMs).toISOString() });
        return this.decideNewer(task);
      }
      case 'mark-waiting':
        this.forget(task.id);
        return;
      case 'invalid':
      case 'dependency-failed':
        this.letGoAfterVerdict(task);
        events.emit(transition === 'invalid' ? 'task:invalid' : 'task:dependency-failed', { id: task.id, message: task.doc.error?.message ?? '' });
        return;
      case 'cancel':
        this.letGoAfterVerdict(task);
        events.emit('task:canceled', { id: task.id });
        return;
      default:
        return;
    }
  }

  /** A verdict is written: the task is let go (a user's change seen meanwhile is decided). */
  private letGoAfterVerdict(task: HeldTask): void {
    const newer = task.takeNewer();
    this.tasks.letGoAfter(task.doc, this.options.clock.now());
    if (newer) this.take([newer]);
  }

  /** A write that did not land: let the task go; a lost one is decided again on the document read back. */
  private missed(task: HeldTask, transition: Transition, missed: Missed, decideFresh = true): void {
    const { log, events } = this.options;
    this.forget(task.id);
    if (missed.kind === 'failed') {
      // Refused, not a conflict (a validate_doc_update, a permission), or the read-back failed:
      // deciding again at once would send the same write again in a loop. The next window
      // query brings the task back.
      log.error(`task ${task.id}: ${transition} failed: ${missed.error.message}; the next window query will find it`);
      return;
    }
    if (missed.contestedRev !== undefined) {
      // The database may show our contested claim a while longer, with our lease: it is not ours.
      this.tasks.standDown(task.id, missed.contestedRev);
      events.emit('task:contested', { id: task.id, during: transition });
    } else {
      events.emit('task:conflict', { id: task.id, during: transition });
    }
    if (missed.fresh && decideFresh) this.decide([missed.fresh]);
  }

  /** Give a task back to `waiting` so any instance may take it (a stop, a limit with no room); let go here. */
  private async handBack(task: HeldTask): Promise<void> {
    const [outcome] = await this.send([{ task, transition: 'hand-back', doc: task.write('hand-back', writes.handBack(task.doc)) }]);
    const missed = task.wrote(outcome!);
    this.afterWrite(task);
    this.tasks.delete(task.id);
    if (!missed) this.options.events.emit('task:handed-back', { id: task.id });
    else this.missed(task, 'hand-back', missed, false);
  }

  /** The store's one write call for these: lanes and hold rules by transition. */
  private send(planned: readonly Planned[]): Promise<WriteOutcome[]> {
    const sent = this.options.store.write(
      planned.map(({ task, transition, doc }) => ({
        doc,
        lane: isUrgent(transition) ? 'run' : 'background',
        claim: takesHold(transition),
        neededByMs: task.task?.dueMs ?? 0,
      })),
    );
    const answered = sent.catch((err: Error): WriteOutcome[] => planned.map(() => ({ kind: 'failed', error: err })));
    this.track(answered);
    return answered;
  }

  /** A write of `task` settled: a user's request waiting for that moment goes now. */
  private afterWrite(task: HeldTask): void {
    if (this.requests.has(task.id)) queueMicrotask(() => this.serveRequest(task.id));
  }

  /** A newer document seen while the task was busy is decided now that it is idle. */
  private decideNewer(task: HeldTask): void {
    const newer = task.takeNewer();
    if (newer) this.take([newer]);
  }

  // ── Beside the pipeline: peers, pauses, requests, dependencies, settings ────────────────

  /**
   * The live instances changed (or this one was announced: its heartbeat came back through the
   * control feed): the shares of the limits follow, and tasks held but not claimed may now be
   * another's share, or ours.
   */
  livesChanged(live: readonly string[], announced: boolean): void {
    this.ready.membershipChanged(live, announced);
    this.decideIdle();
  }

  private decideIdle(): void {
    this.decide([...this.tasks.values()].filter((task) => task.idle).map((task) => task.doc));
  }

  /**
   * The worker name was resumed. During the pause no owner could claim its share, so every
   * backup's grace has run out: backups wait one grace period again, from now, and the owners
   * take their own tasks first rather than every instance racing for all of them.
   */
  resumed(): void {
    const nowMs = this.options.clock.now();
    for (const task of this.tasks.values()) {
      if (!task.backup || !task.task || (task.phase !== 'held' && task.phase !== 'due')) continue;
      this.hold(task.doc, task.task, true, nowMs);
    }
    this.claimDue();
  }

  /** The tasks these tasks wait for changed: decide them again. */
  dependenciesChanged(ids: readonly string[]): void {
    const docs: TaskDoc[] = [];
    for (const id of ids) {
      const task = this.tasks.get(id);
      if (task && (task.phase === 'held' || task.phase === 'blocked')) docs.push(task.doc);
    }
    this.decide(docs);
  }

  /** A user's request came through the control feed: carried out here if this instance is responsible for the task. */
  requested(request: TaskRequest): void {
    if (this.stopping) return;
    const held = this.tasks.get(request.task);
    if (!isResponsible(held, this.options.instance, this.options.peers.owns(request.task))) return;
    this.requests.wait(request);
    this.serveRequest(request.task);
  }

  /** A reload: the jobs and settings from now on (runs in progress finish as they started); held tasks decided again. */
  reconfigure(update: { settings?: PipelineSettings; jobs?: JobRegistry }): void {
    if (this.stopping) return;
    if (update.settings) this.settings = update.settings;
    if (update.jobs) this.jobs = update.jobs;
    this.decideIdle();
    this.claimDue();
  }

  /** Carry out the request waiting for task `id`: now if the task is idle here, else when its run or write allows. */
  private serveRequest(id: string): void {
    const request = this.requests.get(id);
    if (!request || this.stopping) return;
    const task = this.tasks.get(id);
    const step = requestStep(request, task);
    switch (step) {
      case 'later':
        return;
      case 'abort-run':
      case 'after-run':
        if (step === 'abort-run') task!.run!.abort('deleted');
        void this.runs.get(id)?.finally(() => this.serveRequest(id));
        return;
      case 'cancel-run':
      case 'pause-run':
        if (step === 'cancel-run') task!.run!.abort('cancel');
        else task!.pauseRun();
        this.requests.take(id);
        return this.removeRequest(request);
      case 'now':
        this.requests.take(id);
        this.track(this.writeRequest(request, task).finally(() => this.removeRequest(request)));
    }
  }

  /** The request written on the task as it is (held here and idle, or read); the result decided like any document. */
  private async writeRequest(request: TaskRequest, held: HeldTask | undefined): Promise<void> {
    const current = held ? held.doc : ((await this.options.store.getMany([request.task]).catch(() => undefined))?.get(request.task) ?? null);
    if (held) this.unqueue(held);
    const task = held ?? (current ? this.tasks.take(current) : undefined);
    if (!task) return;
    const { written, failed } = await carryOutRequest(request, current, async (next) => {
      const [outcome] = await this.send([{ task, transition: 'request', doc: task.write('request', next) }]);
      task.wrote(outcome!);
      this.afterWrite(task);
      return outcome!;
    });
    if (failed) this.options.log.error(`task ${request.task}: the ${request.action} request could not be written: ${failed.message}`);
    const newer = task.takeNewer();
    if (!written && held && !failed) return this.decide([task.doc]);
    this.forget(task.id);
    if (written) this.take(newer ? [written, newer] : [written]);
  }

  /** The request is carried out (or cannot be): its document goes. */
  private removeRequest(request: TaskRequest): void {
    void this.options.control.remove(request.id, request.rev).catch(() => false);
  }

  // ── Stop ───────────────────────────────────────────────────────────────────────────────

  /** Stop taking tasks: no new claim, decision or timer from now on; runs and writes go on. */
  stopTaking(): void {
    this.stopping = true;
    this.timer.stop();
    this.ready.clear();
    this.ready.stop();
    if (this.backupsTimer) this.options.clock.clearTimeout(this.backupsTimer);
  }

  /**
   * After stopTaking: hand held tasks back (`waiting`), let runs finish for up to `graceMs`,
   * then abort the rest and hand them back too. Resolves when this instance holds nothing, or
   * when `timeLeft()` runs out whatever the database does (past it, the leases cover what is left).
   */
  async drain(graceMs: number, timeLeft: () => number): Promise<void> {
    await within(Promise.allSettled([...this.writesInFlight]), Math.min(graceMs, timeLeft()));
    const handBacks: Promise<void>[] = [];
    for (const task of [...this.tasks.values()]) {
      if (!task.idle) continue;
      if (leasedBy(task.doc, this.options.instance)) {
        this.unqueue(task);
        handBacks.push(this.handBack(task));
      } else {
        this.tasks.delete(task.id);
      }
    }
    const working = Promise.all([...this.working]);
    if (!(await within(working, Math.min(graceMs, timeLeft())))) {
      for (const task of this.tasks.values()) task.run?.abort('shutdown');
    }
    // Writes retry until the database answers; past the deadline the leases cover what is left.
    await within(Promise.all([working, ...handBacks]), timeLeft());
    this.renewals.stop();
  }

  // ── Inside ─────────────────────────────────────────────────────────────────────────────

  private decideContext(): DecideContext {
    const { store, clock, worker, instance, peers, dependencies } = this.options;
    const nowMs = store.dbNow();
    return {
      worker,
      instance,
      nowMs,
      horizonEndMs: nowMs + this.settings.horizonMs,
      dueSoonEndMs: clock.now() + DUE_SOON_MS,
      owns: (id) => peers.owns(id),
      validation: { minRepeatMs: this.settings.minRepeatMs },
      dependencies: dependencies.lookup,
    };
  }

  writeContext(): WriteContext {
    return { instance: this.options.instance, nowMs: this.options.store.dbNow(), leaseMs: this.options.leaseMs, graceMs: this.options.graceMs };
  }

  /** The HeldTask of `doc`'s task, idle: out of the timer and the ready queue. */
  private idleTask(doc: TaskDoc): HeldTask {
    const task = this.tasks.take(doc);
    this.unqueue(task);
    return task;
  }

  private unqueue(task: HeldTask): void {
    this.timer.remove(task.id);
    if (task.phase === 'due') this.ready.remove(task.id);
  }

  /** A write for a task decided now (made idle here first). */
  private plan(doc: TaskDoc, transition: Transition, next: TaskDoc): Planned {
    const task = this.idleTask(doc);
    return { task, transition, doc: task.write(transition, next) };
  }

  /** Let go of a task, unless it is busy or running here. */
  private forget(id: string): void {
    const task = this.tasks.get(id);
    if (!task || !task.idle) return;
    this.unqueue(task);
    this.tasks.delete(id);
  }

  private freeSlot(id: string): void {
    this.slotsInUse -= 1;
    this.ready.release(id);
    this.claimDue();
  }

  private resumeBackupsLater(): void {
    const { clock } = this.options;
    const untilMs = this.backups.pausedUntil(clock.now());
    if (untilMs === 0 || this.backupsTimer) return;
    this.backupsTimer = clock.setTimeout(() => {
      this.backupsTimer = undefined;
      this.claimDue();
    }, Math.max(0, untilMs - clock.now()));
  }

  private work(promise: Promise<void>): void {
    const tracked = promise.catch((err: Error) => void this.options.log.error(`unexpected: ${err.stack ?? err.message}`));
    this.working.add(tracked);
    void tracked.finally(() => this.working.delete(tracked));
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err: Error) => void this.options.log.error(`unexpected: ${err.stack ?? err.message}`));
    this.writesInFlight.add(tracked);
    void tracked.finally(() => this.writesInFlight.delete(tracked));
  }
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

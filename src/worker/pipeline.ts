/**
 * The life of a task in a worker instance, top to bottom:
 *
 *   1. take     documents come in: the feed, the window queries, the lease sweep, a read-back
 *   2. decide   what this instance does with each one (task/decide.ts): hold it, schedule it,
 *               give a verdict, wait for its dependencies, take an expired run over
 *   3. hold     held tasks wait in the per-second timer; at their claim time they are due
 *   4. claim    due tasks, as many as there are free run slots (and, while runs end fast, the
 *               next wave ahead of them), claimed in one bulk write
 *   5. run      each claimed task's job at its date and a free slot (running/run.ts), its
 *               lease renewed
 *   6. finish   each run's outcome written (running/run.ts), beside the next wave's claims
 *
 * A HeldTask (held-task.ts) is the state of one task here, changed only through its own
 * transitions; HeldTasks (held-tasks.ts) says where each one waits. This file moves tasks from
 * stage to stage and makes their writes through the TaskWriter; the store batches the writes
 * of one turn into `_bulk_docs` requests. Stages take arrays: a burst of 3,000 due tasks is a
 * few requests, not 6,000.
 *
 * What comes from beside the pipeline (the live instances changed, the worker name was paused
 * or resumed, a user's request, a dependency changed, a reload) enters through the methods
 * after the stages.
 */
import { within } from '../clock';
import { UnknownJobError } from '../errors';
import type { JobRegistry } from '../jobs/loader';
import type { RunNow, TaskRequest } from '../store/schema';
import { decide, isLease, leasedBy, type DecideContext, type Decision } from '../task/decide';
import type { ParsedTask } from '../task/validate';
import * as writes from '../task/writes';
import type { Transition, WriteContext } from '../task/writes';
import type { TaskDoc } from '../types';
import { describeLease, type HeldTask, type Missed } from './held-task';
import { HeldTasks } from './held-tasks';
import type { PipelineOptions, PipelineSettings } from './pipeline-parts';
import { RequestDesk } from './peers/requests';
import { finishRun, startRun, untilStart, type FinishParts, type RunEnd, type StartGateParts, type StartVerdict } from './running/run';
import { LeaseRenewals } from './running/lease-renewals';
import { RunSlots, type RunSlot } from './timing/run-slots';
import { TaskWriter, type Planned } from './writer';

/**
 * A job may start only once its claim (the `running` write) is won, and that write takes ~10 ms
 * at p50 and 40 ms or more at p99 on pouchdb-server (bench W2, raw). So a task of this
 * instance's share is due this long before its date, the claim is written meanwhile, and the
 * job starts at the date itself: lateness becomes the timer's, not the database's.
 */
export const CLAIM_AHEAD_MS = 250;

/**
 * The longest the feed's next read waits while a backlog of due tasks fills every run slot
 * (readyForMore). Each read makes the database run the feed's filter over every change since
 * the last one, the echoes of this instance's own claims and finishes included: read during a
 * burst, a task's claim and its finish are two changes filtered; read once the backlog is
 * claimed, one (its last). On the embedded server, whose one thread also answers the claims,
 * that filtering was a third of bench W1's drain. The cost: a user's change to a task of this
 * worker (a cancel, a new task due now) is seen up to this much later while a burst lasts. Only
 * an instance alone paces its feed (backlogged).
 */
export const FEED_PACE_MAX_MS = 1000;
/**
 * The longest a run claimed ahead of the slots (run-slots.ts) waits for one before it is handed
 * back (at most a third of the lease).
 */
export const MAX_SLOT_WAIT_MS = 5000;
/** How long a task may be due ahead before it is worth a `scheduled` write. */
const DUE_SOON_MS = 1000;

export class Pipeline {
  private readonly tasks: HeldTasks;
  private readonly writer: TaskWriter;
  private readonly slots: RunSlots;
  private readonly renewals: LeaseRenewals;
  private readonly requests: RequestDesk;
  private readonly startGate: StartGateParts;
  /** What every run's finish uses (running/run.ts): made once, not once a run. */
  private readonly finishParts: FinishParts;
  /** Task id → its run, settling once the run's end has been written and acted on. */
  private readonly runs = new Map<string, Promise<void>>();
  /** The feed's wait for the backlog to clear (readyForMore), if it waits. */
  private paced: { promise: Promise<void>; release(): void } | undefined;
  /** Claims and runs under way (a stop waits for them). */
  private readonly working = new Set<Promise<void>>();
  private stopping = false;
  /** A claimDue is queued for the slots freed in this turn (claimEnded). */
  private claimDueQueued = false;
  private settings: PipelineSettings;
  private jobs: JobRegistry;

  constructor(private readonly options: PipelineOptions) {
    const { clock, events } = options;
    this.settings = options.settings;
    this.jobs = options.jobs;
    this.writer = new TaskWriter(options.store);
    this.tasks = new HeldTasks({
      worker: options.worker,
      instance: options.instance,
      clock,
      limits: options.limits,
      claimAheadMs: CLAIM_AHEAD_MS,
      onDue: (ids) => this.due(ids),
      onRoom: () => queueMicrotask(() => this.claimDue()),
      onThrottled: (id, limit, waitedMs) => events.emit('task:throttled', { id, limit, waitedMs }),
    });
    this.slots = new RunSlots({
      clock,
      graceMs: options.graceMs,
      concurrency: () => this.settings.concurrency,
      // A claimed run waiting for a slot is not renewed: it waits well within its lease.
      maxSlotWaitMs: Math.min(MAX_SLOT_WAIT_MS, Math.floor(options.leaseMs / 3)),
      onBackupsResume: () => this.claimDue(),
    });
    this.renewals = new LeaseRenewals({
      clock,
      everyMs: Math.max(100, Math.floor(options.leaseMs / 3)),
      tasks: this.tasks,
      writer: this.writer,
      writeContext: () => this.writeContext(),
      warn: (line) => options.log.warn(line),
    });
    this.requests = new RequestDesk({
      instance: options.instance,
      owns: (id) => options.peers.owns(id),
      tasks: this.tasks,
      writer: this.writer,
      read: async (id) => (await options.store.getMany([id])).get(id) ?? null,
      remove: (request) => void options.control.remove(request.id, request.rev).catch(() => false),
      runEnd: (id) => this.runs.get(id),
      log: (line) => options.log.error(line),
    });
    this.finishParts = {
      worker: options.worker,
      instance: options.instance,
      historyLimit: () => this.settings.historyLimit,
      log: options.log,
      events: options.events,
      write: (held, doc) => this.writer.writeOne(held, 'finish', doc).finally(() => this.afterWrite(held)),
    };
    this.startGate = {
      clock,
      stopping: () => this.stopping,
      paused: () => options.peers.paused,
      hasRequest: (id) => this.requests.has(id),
      startWaitMs: (id) => this.tasks.ready.startWaitMs(id),
    };
  }

  /** Tasks held (in the timer, due, claimed, running...). */
  get heldCount(): number {
    return this.tasks.size;
  }

  /**
   * When the feed may read again: at once (undefined), or, while more than a wave of due tasks
   * waits (backlogged), once no more than a wave does or FEED_PACE_MAX_MS has passed (never rejects).
   */
  readyForMore(): Promise<void> | undefined {
    if (!this.backlogged()) return undefined;
    if (!this.paced) {
      const { clock } = this.options;
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      const timer = clock.setTimeout(() => release(), FEED_PACE_MAX_MS);
      const release = (): void => {
        clock.clearTimeout(timer);
        this.paced = undefined;
        resolve();
      };
      this.paced = { promise, release };
    }
    return this.paced.promise;
  }

  /** Run slots in use: tasks being claimed or run. */
  get runningCount(): number {
    return this.slots.inUse;
  }

  /** Due tasks waiting for a rate or concurrency limit (config `limits`), as of the last try. */
  get throttledCount(): number {
    return this.tasks.ready.throttledCount;
  }

  /** This worker name has limits (config `limits`). */
  get limited(): boolean {
    return this.tasks.ready.limited;
  }

  /** The runs in progress, longest-running first, at most `limit`, dated by the database's clock (`dbNowMs` now). */
  runsNow(limit: number, dbNowMs: number): RunNow[] {
    const nowMs = this.options.clock.now();
    const started: Array<{ id: string; job: string; startedAtMs: number }> = [];
    for (const id of this.runs.keys()) {
      const task = this.tasks.get(id);
      const run = task?.run;
      if (task?.task && run) started.push({ id, job: task.task.job.name, startedAtMs: run.startedAtMs });
    }
    started.sort((a, b) => a.startedAtMs - b.startedAtMs || (a.id < b.id ? -1 : 1));
    return started.slice(0, limit).map(({ id, job, startedAtMs }) => ({ id, job, since: new Date(dbNowMs - (nowMs - startedAtMs)).toISOString() }));
  }

  heldByStatus(): Map<string, number> {
    return this.tasks.byStatus();
  }

  // ── 1. take ────────────────────────────────────────────────────────────────────────────

  /** Documents from anywhere: each one newer than what is known is decided (now, or once its task is idle). */
  take(docs: readonly TaskDoc[]): void {
    const toDecide: TaskDoc[] = [];
    for (const doc of docs) {
      const task = this.tasks.get(doc._id);
      if (!task) {
        if (!this.tasks.isStale(doc)) toDecide.push(doc);
        continue;
      }
      const seen = task.observe(doc);
      if (seen.kind === 'decide') toDecide.push(doc);
      else if (seen.kind === 'renew') this.renewals.renew([task.id]);
      // A claim ahead waiting for its slot hears of it now, not when the slot comes.
      else if (seen.kind === 'kept') this.slots.stopWaiting(task.id);
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
    if (planned.length > 0) this.guard(this.writeIdle(planned));
    this.claimDue();
  }

  /** One decision carried out; the write it asks for, if any. */
  private carryOut(doc: TaskDoc, decision: Decision): Planned | undefined {
    switch (decision.kind) {
      case 'drop':
        this.tasks.forget(doc._id);
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
    }
    const parsed = decision.task;
    if (!this.jobs.resolve(parsed.job.name)) {
      const message = `job.name: unknown job ${quote(parsed.job.name)} (not found in the jobs folder ${this.jobs.dir})`;
      return this.plan(doc, 'invalid', writes.invalid(doc, 'job.name', message));
    }
    switch (decision.kind) {
      case 'hold':
      case 'keep':
        this.hold(doc, parsed, decision.kind === 'hold' && decision.backup);
        return undefined;
      case 'schedule': {
        const task = this.tasks.idle(doc);
        return { task, transition: 'schedule', doc: task.schedule(doc, parsed, this.writeContext()) };
      }
      case 'wait-for':
        // Out of the timer until its dependencies change (dependency-watch.ts).
        this.tasks.idle(doc).block(doc, parsed);
        this.options.dependencies.watch(doc._id, decision.watch);
        return undefined;
      case 'take-over-run':
        this.takeOver(doc, parsed, decision.backup);
        return undefined;
    }
  }

  /** A run whose holder's lease expired: claimed again at once (at least once), or as a backup past its grace. */
  private takeOver(doc: TaskDoc, parsed: ParsedTask, backup: boolean): void {
    const { peers, clock, log } = this.options;
    if (backup && isLease(doc.lease) && peers.live.includes(doc.lease.instance)) {
      // Its holder let the lease run out: it is gone, whatever its last heartbeat says. The
      // tasks of its share (this one perhaps) are split among the others at once.
      peers.suspect(doc.lease.instance);
      if (!peers.live.includes(doc.lease.instance)) return this.decide([doc]);
    }
    // Another instance's share: its owner takes the run over at once; this one only if the run
    // is still not taken a grace period later.
    if (backup) return this.hold(doc, parsed, true, clock.now());
    log.warn(`task ${doc._id}: the lease of ${describeLease(doc)} expired; taking the run over`);
    const task = this.tasks.idle(doc);
    task.hold(doc, parsed, false);
    this.tasks.makeDue(task);
  }

  // ── 3. hold ────────────────────────────────────────────────────────────────────────────

  /**
   * Held in memory until its claim time: this instance's share a little before its date, a
   * backup once its grace has passed (from `fromMs`, by default the date).
   */
  private hold(doc: TaskDoc, parsed: ParsedTask, backup: boolean, fromMs = parsed.dueMs): void {
    const task = this.tasks.idle(doc);
    task.hold(doc, parsed, backup);
    this.tasks.wake(task, backup ? fromMs + this.options.graceMs : parsed.dueMs - CLAIM_AHEAD_MS);
  }

  /** The timer: held tasks whose claim time has come. */
  private due(ids: readonly string[]): void {
    for (const id of ids) {
      const task = this.tasks.get(id);
      if (task) this.tasks.makeDue(task);
    }
    this.claimDue();
  }

  // ── 4. claim ───────────────────────────────────────────────────────────────────────────

  /**
   * Due tasks take the free run slots (unless paused or stopping), and are claimed in one write.
   * While runs end fast, the next wave is claimed ahead of the slots (not under limits: a claimed
   * run must not wait for a limit's room holding a lease).
   */
  private claimDue(): void {
    if (!this.stopping && !this.options.peers.paused) {
      const wave = this.slots.fill(this.tasks, !this.tasks.ready.limited);
      if (wave.length > 0) this.work(this.claim(wave));
    }
    if (this.paced && !this.backlogged()) this.paced.release();
  }

  /**
   * More than a wave of due tasks (as many as there are run slots) waits to be claimed: a burst
   * is being worked through. With a wave or less left, the feed's next read overlaps its last
   * wave. Due tasks just taken count from the start, though the timer hands them on a turn later.
   * Only for an instance alone: beside others, a new task of its share that it saw a second late
   * would be claimed by another as a backup at the same moment (the split of docs/spec.md §7
   * relies on each owner seeing its tasks first).
   */
  private backlogged(): boolean {
    const { peers } = this.options;
    return !this.stopping && !peers.paused && peers.live.length <= 1 && this.tasks.dueCount() > this.settings.concurrency;
  }

  private async claim(wave: ReadonlyArray<{ task: HeldTask; slot: RunSlot }>): Promise<void> {
    const ctx = this.writeContext();
    const backups = wave.map(({ task }) => task.backup);
    const outcomes = await this.writer.write(wave.map(({ task }) => ({ task, transition: 'claim', doc: task.claim(ctx) })));
    wave.forEach(({ task, slot }, index) => {
      const missed = task.claimed(outcomes[index]!);
      if (backups[index]) this.slots.backupAnswered(!missed);
      this.afterWrite(task);
      if (missed) {
        this.claimEnded(task.id, slot, false);
        return this.missed(task, 'claim', missed);
      }
      this.options.events.emit('task:claimed', { id: task.id });
      const run = this.run(task, slot);
      this.runs.set(task.id, run);
      this.work(run);
    });
  }

  // ── 5. run ─────────────────────────────────────────────────────────────────────────────

  /** A claimed task: its date (never early), a run slot, its limits, its job, its finish. Its slot is free once the job has ended. */
  private async run(task: HeldTask, slot: RunSlot): Promise<void> {
    let claimHeld = true;
    let started = false;
    const claimEnded = (ran: boolean): void => {
      if (claimHeld) this.claimEnded(task.id, slot, ran);
      claimHeld = false;
    };
    try {
      const gate = untilStart(task, this.startGate, slot);
      const verdict = typeof gate === 'string' ? gate : await gate;
      if (verdict !== 'start') {
        claimEnded(false);
        return await this.notStarted(task, verdict);
      }
      started = true;
      const run = this.startJob(task);
      const outcome = await run.outcome;
      const finishedAtMs = this.options.clock.now();
      claimEnded(true);
      this.renewals.untrack(task.id);
      const end = await finishRun(task, run, outcome, finishedAtMs, this.finishParts);
      await this.ended(task, end);
    } finally {
      // Whatever threw, the claim and its slot (once the job was called) are given up.
      claimEnded(started);
      this.runs.delete(task.id);
    }
  }

  private startJob(task: HeldTask): ReturnType<typeof startRun> {
    const { clock, log, events } = this.options;
    const parsed = task.task!;
    // A reload may have taken the job away since the task was claimed.
    const job = this.jobs.resolve(parsed.job.name) ?? (() => Promise.reject(new UnknownJobError(parsed.job.name)));
    const run = startRun({
      job,
      doc: task.doc,
      timeoutMs: parsed.timeoutMs ?? (this.settings.timeoutMs || undefined),
      clock,
      log: () => log.child({ component: `task ${task.id}` }),
    });
    task.start(run);
    // Counted once the job has been called, so the job's own clock read comes first.
    this.tasks.ready.started(task.id);
    this.renewals.track(task.id);
    events.emit('task:started', { id: task.id, job: parsed.job.name, lateMs: run.startedAtMs - parsed.dueMs });
    return run;
  }

  /** A claimed run that does not start (start-gate.ts says why): what comes instead. */
  private async notStarted(task: HeldTask, verdict: Exclude<StartVerdict, 'start'>): Promise<void> {
    task.release();
    switch (verdict) {
      case 'request':
        return this.serveRequest(task.id);
      case 'overtaken':
        return this.decideNewer(task);
      case 'no-room':
      case 'no-slot':
      case 'stopping':
        if (verdict === 'no-room') this.options.log.info(`task ${task.id}: its rate limit has no room now; handing it back`);
        if (verdict === 'no-slot') this.options.log.info(`task ${task.id}: claimed ahead, no run slot came free in time; handing it back`);
        await this.handBack(task);
        return;
      case 'paused': {
        // The worker name was paused between the claim (written ahead of the date) and the date:
        // the task goes back to `waiting`, held here until the resume.
        if (!(await this.handBack(task, { keep: true })) || this.stopping) return this.tasks.delete(task.id);
        return this.decide([task.takeNewer() ?? task.doc]);
      }
    }
  }

  // ── 6. finish ──────────────────────────────────────────────────────────────────────────

  /** What follows a run's end (running/run.ts): the task let go, its next date or the newest document decided. */
  private async ended(task: HeldTask, end: RunEnd): Promise<void> {
    switch (end.kind) {
      case 'shutdown':
        await this.handBack(task);
        return;
      case 'finished': {
        const written = task.doc;
        const newer = task.takeNewer();
        this.tasks.letGoAfter(written);
        if (newer) this.decide([newer]);
        else if (written.status === 'waiting') this.decide([written]);
        break;
      }
      case 'abandoned':
        this.tasks.forget(task.id);
        if (end.newest) this.decide([end.newest]);
        break;
    }
    this.serveRequest(task.id);
  }

  // ── The writes of idle tasks ───────────────────────────────────────────────────────────

  /** Writes asked by decisions (schedules, verdicts, mark-waiting), sent together; each outcome acted on. */
  private async writeIdle(planned: readonly Planned[]): Promise<void> {
    const outcomes = await this.writer.write(planned);
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
    if (transition === 'schedule') {
      const parsed = task.task!;
      task.hold(task.doc, parsed, false);
      this.tasks.wake(task, parsed.dueMs - CLAIM_AHEAD_MS);
      events.emit('task:scheduled', { id: task.id, date: new Date(parsed.dueMs).toISOString() });
      return this.decideNewer(task);
    }
    if (transition === 'mark-waiting') return this.tasks.forget(task.id);
    // A verdict: the task is let go (a user's change seen meanwhile is decided).
    const newer = task.takeNewer();
    this.tasks.letGoAfter(task.doc);
    if (transition === 'cancel') events.emit('task:canceled', { id: task.id });
    else events.emit(transition === 'invalid' ? 'task:invalid' : 'task:dependency-failed', { id: task.id, message: task.doc.error?.message ?? '' });
    if (newer) this.take([newer]);
  }

  /** A write that did not land: let the task go; a lost one is decided again on the document read back. */
  private missed(task: HeldTask, transition: Transition, missed: Missed, decideFresh = true): void {
    const { log, events } = this.options;
    this.tasks.forget(task.id);
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

  /**
   * Give a task back to `waiting` so any instance may take it (a stop, a pause before its start,
   * a limit with no room). Let go here, unless `keep`. True when written.
   */
  private async handBack(task: HeldTask, options: { keep?: boolean } = {}): Promise<boolean> {
    const outcome = await this.writer.writeOne(task, 'hand-back', task.write('hand-back', writes.handBack(task.doc)));
    const missed = task.wrote(outcome);
    this.afterWrite(task);
    if (missed) {
      this.tasks.delete(task.id);
      this.missed(task, 'hand-back', missed, options.keep === true);
      return false;
    }
    if (!options.keep) this.tasks.delete(task.id);
    this.options.events.emit('task:handed-back', { id: task.id });
    return true;
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

  // ── Beside the pipeline: peers, pauses, requests, dependencies, reloads ─────────────────

  /**
   * The live instances changed (or this one was announced: its heartbeat came back through the
   * control feed): the shares of the limits follow, and tasks held but not claimed may now be
   * another's share, or ours.
   */
  livesChanged(live: readonly string[], announced: boolean): void {
    this.tasks.ready.membershipChanged(live, announced);
    this.decideIdle();
  }

  /**
   * The worker name was resumed. During the pause no owner could claim its share, so every
   * backup's grace has run out: backups wait one grace period again, from now, and the owners
   * take their own tasks first rather than every instance racing for all of them.
   */
  resumed(): void {
    const nowMs = this.options.clock.now();
    for (const task of [...this.tasks.values()]) {
      if (task.backup && task.task && (task.phase === 'held' || task.phase === 'due')) this.hold(task.doc, task.task, true, nowMs);
    }
    this.claimDue();
  }

  /** The tasks these tasks wait for changed: decide them again. */
  dependenciesChanged(ids: readonly string[]): void {
    const waiting = ids.map((id) => this.tasks.get(id)).filter((task) => task?.phase === 'held' || task?.phase === 'blocked');
    this.decide(waiting.map((task) => task!.doc));
  }

  /** A reload: the jobs and settings from now on (runs in progress finish as they started); held tasks decided again. */
  reconfigure(update: { settings?: PipelineSettings; jobs?: JobRegistry }): void {
    if (this.stopping) return;
    if (update.settings) this.settings = update.settings;
    if (update.jobs) this.jobs = update.jobs;
    this.decideIdle();
  }

  /** A user's request came through the control feed: carried out here if this instance is responsible for the task. */
  requested(request: TaskRequest): void {
    if (this.stopping || !this.requests.received(request)) return;
    // A claim ahead of the task, waiting for its slot, gives way to the request at once.
    this.slots.stopWaiting(request.task);
    this.serveRequest(request.task);
  }

  /** The request waiting for task `id`, carried out if its moment has come; what it wrote decided like any document. */
  private serveRequest(id: string): void {
    if (this.stopping || !this.requests.has(id)) return;
    this.guard(this.requests.serve(id, () => this.serveRequest(id)).then((docs) => this.decide(docs)));
  }

  // ── Stop ───────────────────────────────────────────────────────────────────────────────

  /** Stop taking tasks: no new claim, decision or timer from now on; runs and writes go on. */
  stopTaking(): void {
    this.stopping = true;
    this.tasks.stop();
    this.slots.stop();
    this.paced?.release();
  }

  /**
   * After stopTaking: hand held tasks back (`waiting`), let runs finish for up to `graceMs`,
   * then abort the rest and hand them back too. Resolves when this instance holds nothing, or
   * when `timeLeft()` runs out whatever the database does (past it, the leases cover what is left).
   */
  async drain(graceMs: number, timeLeft: () => number): Promise<void> {
    await within(this.writer.settled(), Math.min(graceMs, timeLeft()));
    const handBacks: Promise<unknown>[] = [];
    for (const task of [...this.tasks.values()]) {
      if (!task.idle) continue;
      if (leasedBy(task.doc, this.options.instance)) handBacks.push(this.handBack(this.tasks.idle(task.doc)));
      else this.tasks.delete(task.id);
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
      validation: { minRepeatMs: this.settings.minRepeatMs, maxTaskBytes: this.settings.maxTaskBytes },
      dependencies: dependencies.lookup,
    };
  }

  private decideIdle(): void {
    this.decide([...this.tasks.values()].filter((task) => task.idle).map((task) => task.doc));
  }

  private writeContext(): WriteContext {
    const { instance, store, leaseMs, graceMs } = this.options;
    return { instance, nowMs: store.dbNow(), leaseMs, graceMs };
  }

  /** A write for a task decided now (made idle here first). */
  private plan(doc: TaskDoc, transition: Transition, next: TaskDoc): Planned {
    const task = this.tasks.idle(doc);
    return { task, transition, doc: task.write(transition, next) };
  }

  /** A claim is over: its job ended (`ran`), or it was lost or did not start. Its slot goes to the next run. */
  private claimEnded(id: string, slot: RunSlot, ran: boolean): void {
    this.slots.release(slot, ran);
    this.tasks.ready.release(id);
    // The runs of a wave end in the same turn: their freed slots are filled together, as one claim write.
    if (this.claimDueQueued) return;
    this.claimDueQueued = true;
    queueMicrotask(() => {
      this.claimDueQueued = false;
      this.claimDue();
    });
  }

  /** A claim or a run under way, which a stop waits for. */
  private work(promise: Promise<void>): void {
    // One promise a claim or run, not a guard and a finally (a burst tracks thousands).
    const tracked: Promise<void> = promise.then(
      () => void this.working.delete(tracked),
      (err: Error) => {
        this.working.delete(tracked);
        this.unexpected(err);
      },
    );
    this.working.add(tracked);
  }

  /** What goes wrong in work no caller awaits is logged, never an unhandled rejection. */
  private guard(promise: Promise<unknown>): Promise<void> {
    return promise.then(
      () => undefined,
      (err: Error) => this.unexpected(err),
    );
  }

  private unexpected(err: Error): void {
    this.options.log.error(`unexpected: ${err.stack ?? err.message}`);
  }
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

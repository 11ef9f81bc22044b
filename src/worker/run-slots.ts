/**
 * Claims and runs, within the instance's run slots (`--concurrency`): due tasks leave the ready
 * queue while a slot is free, the worker name is not paused and the instance is not stopping;
 * each is claimed (the `running` write, made ahead of its date), waits for its date and for its
 * rate limits, runs (runner.ts), and is then decided again or let go.
 *
 * Backups (other instances' tasks past their grace: their owner is busy) are claimed a few at a
 * time, one more at once with each one won, up to MAX_BACKUP_WINDOW: a busy owner catches up at
 * the end of its backlog, where a thief that took many at once would lose most of them to it. A
 * backup lost to its owner closes the window to one and pauses backups for a grace period. (An
 * owner that is gone is no owner: its share is split among the live instances, claimed at full
 * speed as their own.)
 */
import * as writes from '../task/writes';
import type { TaskDoc } from '../types';
import { isNewer, type Entry } from './entry';
import type { RunEnd } from './runner';
import type { WorkerCore } from './worker-core';

/** The most backups claimed at once. */
const MAX_BACKUP_WINDOW = 8;
/**
 * A claimed run that its rate limit makes wait longer than this (the live instances changed
 * after the claim) is handed back rather than kept claimed: its lease is not for waiting.
 */
const MAX_START_WAIT_MS = 5000;

export class RunSlots {
  /** Runs at once (a reload may change it). */
  concurrency: number;
  private active = 0;
  private readonly settling = new Set<Promise<void>>();
  /** Task id → its run, ending once the run's outcome is written (or abandoned). */
  private readonly runEnds = new Map<string, Promise<RunEnd>>();
  private backupsPausedUntil = 0;
  private backupWindow = 1;
  private backupsClaiming = 0;
  private backupsTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly core: WorkerCore,
    concurrency: number,
  ) {
    this.concurrency = concurrency;
  }

  /** Slots in use: tasks being claimed or run. */
  get running(): number {
    return this.active;
  }

  /** Every claim-and-run under way: each settles once its outcome is written and acted on. */
  settled(): Promise<unknown> {
    return Promise.all([...this.settling]);
  }

  /** The run of task `id` under way, settling once its outcome is written (or abandoned). */
  runOf(id: string): Promise<RunEnd> | undefined {
    return this.runEnds.get(id);
  }

  /** Held tasks whose claim time has come (the per-second timer): into the ready queue. */
  due(ids: string[]): void {
    for (const id of ids) {
      const entry = this.core.table.get(id);
      if (!entry || entry.state !== 'held' || !entry.task) continue;
      this.core.table.makeReady(entry);
    }
    this.pump();
  }

  /** Take due tasks from the ready queue while a slot is free. */
  pump(): void {
    const { core } = this;
    const ready = core.table.ready;
    while (!core.stopping && !core.control.paused && this.active < this.concurrency) {
      const id = ready.pop();
      if (id === undefined) return;
      const entry = core.table.get(id);
      if (!entry || entry.state !== 'ready' || entry.busy) {
        // Popped, so its limits reserved room for it: given back.
        ready.release(id);
        continue;
      }
      if (entry.backup && (core.clock.now() < this.backupsPausedUntil || this.backupsClaiming >= this.backupWindow)) {
        // Backups come after every task of our own: nothing of ours waits either.
        ready.release(id);
        core.table.makeReady(entry);
        if (core.clock.now() < this.backupsPausedUntil) this.resumeBackupsLater();
        return;
      }
      this.active += 1;
      const settled: Promise<void> = this.claimAndRun(entry)
        .catch((err: Error) => {
          core.log.error(`task ${id}: run failed unexpectedly: ${err.stack ?? err.message}`);
        })
        .finally(() => {
          this.settling.delete(settled);
        });
      this.settling.add(settled);
    }
  }

  stop(): void {
    if (this.backupsTimer) this.core.clock.clearTimeout(this.backupsTimer);
    this.backupsTimer = undefined;
  }

  private resumeBackupsLater(): void {
    if (this.backupsTimer) return;
    const { clock } = this.core;
    this.backupsTimer = clock.setTimeout(() => {
      this.backupsTimer = undefined;
      this.pump();
    }, Math.max(0, this.backupsPausedUntil - clock.now()));
  }

  private async claimAndRun(entry: Entry): Promise<void> {
    const { core } = this;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.active -= 1;
      core.table.ready.release(entry.id);
      this.pump();
    };
    try {
      entry.state = 'claiming';
      if (!(await this.claim(entry))) return;
      if (core.stopping) {
        // The signal came while the claim was in flight: no new run starts after it.
        await core.writes.handBack(entry);
        return;
      }
      const untilDate = await this.untilDate(entry);
      if (core.requests.has(entry.id)) {
        // A user's request came meanwhile: it goes first, on top of our claim.
        entry.state = 'held';
        core.requests.serve(entry.id);
        return;
      }
      if (!untilDate) {
        // Stopping, or a newer version of the task (a cancel, a reschedule) came meanwhile.
        entry.state = 'held';
        if (core.stopping) await core.writes.handBack(entry);
        else core.writes.afterWrite(entry);
        return;
      }
      if (core.control.paused) return await this.pausedBeforeStart(entry);
      // The limits are checked, the job called and its start counted in one turn: no other start
      // of this instance comes between (limiter.ts).
      let limitWaitMs: number;
      while ((limitWaitMs = core.table.ready.startWaitMs(entry.id)) > 0) {
        if (!(await this.waitForLimits(entry, limitWaitMs))) return await this.startGivenUp(entry);
      }
      entry.state = 'running';
      const running = core.runner.run(entry, release);
      // Counted once the job has been called, so the job's own clock read comes first.
      core.table.ready.started(entry.id);
      this.runEnds.set(entry.id, running);
      const end = await running.finally(() => this.runEnds.delete(entry.id));
      release();
      await this.afterRun(entry, end);
    } finally {
      release();
    }
  }

  /** The claim write; a backup's outcome opens or closes the backup window. */
  private async claim(entry: Entry): Promise<TaskDoc | undefined> {
    const { core } = this;
    const backup = entry.backup;
    if (backup) this.backupsClaiming += 1;
    let claimed: TaskDoc | undefined;
    try {
      claimed = await core.writes.write(entry, writes.claim(entry.doc, core.writeContext()), 'claim');
    } finally {
      if (backup) this.backupsClaiming -= 1;
    }
    if (backup && claimed) {
      this.backupWindow = Math.min(this.concurrency, MAX_BACKUP_WINDOW, this.backupWindow + 1);
    } else if (backup) {
      // Another instance was first to a task of its own share: its owner is at work there.
      this.backupWindow = 1;
      this.backupsPausedUntil = core.clock.now() + core.graceMs;
    }
    return claimed;
  }

  /**
   * Claimed ahead of the date: wait for the date itself (never early). A newer version of the
   * task seen meanwhile (a cancel, a reschedule) is decided instead of the run.
   */
  private async untilDate(entry: Entry): Promise<boolean> {
    const { core } = this;
    const dateMs = entry.task!.dueMs;
    entry.busy = true;
    try {
      for (let wait = dateMs - core.clock.now(); wait > 0 && !core.stopping; wait = dateMs - core.clock.now()) {
        await new Promise<void>((resolve) => core.clock.setTimeout(resolve, wait));
      }
    } finally {
      entry.busy = false;
    }
    return !core.stopping && !(entry.pending !== undefined && isNewer(entry.pending, entry.doc));
  }

  /**
   * The worker name was paused between the claim (written ahead of the date) and the date: no
   * run starts. The task goes back to `waiting`, held here until the resume (a stop meanwhile
   * leaves it to this write: the entry stays `claiming` until it is done).
   */
  private async pausedBeforeStart(entry: Entry): Promise<void> {
    const { core } = this;
    const handedBack = await core.writes.write(entry, writes.handBack(entry.doc), 'hand-back');
    entry.state = 'held';
    if (!handedBack) return;
    core.events.emit('task:handed-back', { id: entry.id });
    if (core.stopping) {
      core.table.delete(entry.id);
      return;
    }
    core.apply(handedBack);
    core.writes.afterWrite(entry);
  }

  /**
   * The rate limits of a claimed run ask it to wait `waitMs` before it starts (a run claimed
   * ahead of its date, or the live instances changed since the claim): wait, unless stopping, a
   * newer version of the task or a user's request came, or the wait would outlast what a claim
   * is for. True when it is worth checking again.
   */
  private async waitForLimits(entry: Entry, waitMs: number): Promise<boolean> {
    const { core } = this;
    if (waitMs > MAX_START_WAIT_MS || core.stopping || core.requests.has(entry.id)) return false;
    entry.busy = true;
    try {
      await new Promise<void>((resolve) => core.clock.setTimeout(resolve, waitMs));
    } finally {
      entry.busy = false;
    }
    return !core.stopping && !core.requests.has(entry.id) && !(entry.pending !== undefined && isNewer(entry.pending, entry.doc));
  }

  /** A claimed run that will not start now (see waitForLimits): what comes instead. */
  private async startGivenUp(entry: Entry): Promise<void> {
    const { core } = this;
    entry.state = 'held';
    if (core.requests.has(entry.id) && !core.stopping) return core.requests.serve(entry.id);
    if (!core.stopping && entry.pending !== undefined && isNewer(entry.pending, entry.doc)) return core.writes.afterWrite(entry);
    // Stopping, or the live instances changed since the claim and its limit has no room for a while.
    if (!core.stopping) core.log.info(`task ${entry.id}: its rate limit has no room now; handing it back`);
    await core.writes.handBack(entry);
  }

  /** What the instance does with a task once its run has ended. */
  private async afterRun(entry: Entry, end: RunEnd): Promise<void> {
    const { core } = this;
    switch (end.kind) {
      case 'shutdown':
        await core.writes.handBack(entry);
        return;
      case 'recorded':
        core.table.wrote(end.doc, core.clock.now());
        if (end.doc.status === 'waiting' && !core.stopping) core.apply(end.doc);
        core.requests.serve(entry.id);
        return;
      case 'abandoned':
        core.table.forget(entry.id);
        if (end.doc && !core.stopping) core.apply(end.doc);
        core.requests.serve(entry.id);
        return;
    }
  }
}

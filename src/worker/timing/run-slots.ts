/**
 * An instance's run slots (`--concurrency`): which due tasks are claimed now, and which claimed
 * runs may start. At most `concurrency` jobs run at once.
 *
 * Claims go ahead of the slots while the slots turn over fast: once runs end quickly (as many
 * claims ahead as runs ended in the last AHEAD_WINDOW_MS, at most `concurrency`), the next
 * wave is claimed while this one runs, and starts the moment a slot is free instead of a claim
 * write later. A claimed run waits for a slot in claim order, and for at most `maxSlotWaitMs`:
 * past it, it is handed back (a job that suddenly runs long must not keep another instance
 * from a task this one cannot start). Long runs claim nothing ahead. Backups, and a worker name
 * with limits (config `limits`), claim only into free slots.
 *
 * Backups (another live instance's tasks, still unclaimed past their grace: their owner is busy)
 * are claimed a few at a time, one more at once with each one won, up to MAX_BACKUP_WINDOW: a
 * busy owner catches up at the end of its backlog, where a thief that took many at once would
 * lose most of them to it. A backup lost to its owner closes the window to one and pauses
 * backups for a grace period. (An owner that is gone is no owner: its share is split among the
 * live instances and claimed as their own.)
 */
import type { Clock } from '../../clock';
import type { HeldTask } from '../held-task';

/** The most backups claimed at once. */
export const MAX_BACKUP_WINDOW = 8;

/** Claims ahead of the slots: as many as runs ended within this window. */
export const AHEAD_WINDOW_MS = 1000;

export interface RunSlotsOptions {
  clock: Clock;
  /** How long past its date another instance's task waits before this one claims it. */
  graceMs: number;
  /** Runs at once (`--concurrency`; a reload may change it). */
  concurrency(): number;
  /** The longest a claimed run waits for a free slot before it is handed back. */
  maxSlotWaitMs: number;
  /** Backups may be claimed again after a pause: try again. */
  onBackupsResume(): void;
}

/** Where the next due task comes from (held-tasks.ts). */
export interface DueTasks {
  nextDue(): HeldTask | undefined;
  putBack(task: HeldTask): void;
}

interface SlotWaiter {
  grant(granted: boolean): void;
  timer: NodeJS.Timeout;
}

export class RunSlots {
  /** Tasks whose claim is in flight or won, and not yet ended: claiming, claimed, running. */
  private claims = 0;
  /** Run slots taken: jobs running, or about to start in this turn. */
  private running = 0;
  /** Claimed runs waiting for a free slot, in claim order. */
  private readonly waiters: SlotWaiter[] = [];
  /** When recent runs ended (local clock), oldest first, from `endsHead` on. */
  private ends: number[] = [];
  private endsHead = 0;
  private backupsPausedUntilMs = 0;
  private backupWindow = 1;
  private backupsClaiming = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: RunSlotsOptions) {}

  /** Slots in use: tasks being claimed or run, claims ahead not counted. */
  get inUse(): number {
    return Math.min(this.claims, this.options.concurrency());
  }

  /**
   * Due tasks to claim now: while a slot is free (or, with `ahead`, a claim ahead is allowed),
   * own tasks first, backups a few at a time and only into free slots.
   */
  fill(due: DueTasks, ahead: boolean): HeldTask[] {
    const wave: HeldTask[] = [];
    const nowMs = this.options.clock.now();
    const concurrency = this.options.concurrency();
    const limit = concurrency + (ahead ? this.aheadRoom(nowMs, concurrency) : 0);
    while (this.claims < limit) {
      const task = due.nextDue();
      if (!task) break;
      if (task.backup && (this.claims >= concurrency || nowMs < this.backupsPausedUntilMs || this.backupsClaiming >= this.backupWindow)) {
        // Backups come after every task of our own in the queue: nothing of ours waits either.
        due.putBack(task);
        if (this.claims < concurrency) this.resumeBackupsLater(nowMs);
        break;
      }
      this.claims += 1;
      if (task.backup) this.backupsClaiming += 1;
      wave.push(task);
    }
    return wave;
  }

  /** A backup's claim came back: won, the window opens by one; lost, it closes and backups pause. */
  backupAnswered(won: boolean): void {
    this.backupsClaiming -= 1;
    if (won) {
      this.backupWindow = Math.min(this.options.concurrency(), MAX_BACKUP_WINDOW, this.backupWindow + 1);
    } else {
      // Another instance was first to a task of its own share: its owner is at work there.
      this.backupWindow = 1;
      this.backupsPausedUntilMs = this.options.clock.now() + this.options.graceMs;
    }
  }

  /**
   * A slot for a claimed run: taken now (true), or a promise of one, in claim order: true once
   * a slot is taken for it, false when none came within `maxSlotWaitMs` or the slots stopped.
   */
  takeSlot(): true | Promise<boolean> {
    if (this.running < this.options.concurrency() && this.waiters.length === 0) {
      this.running += 1;
      return true;
    }
    if (this.stopped) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter: SlotWaiter = {
        grant: (granted) => {
          this.options.clock.clearTimeout(waiter.timer);
          resolve(granted);
        },
        timer: this.options.clock.setTimeout(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          resolve(false);
        }, this.options.maxSlotWaitMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** A slot taken by takeSlot whose run did not start after all. */
  returnSlot(): void {
    this.running -= 1;
    this.grantWaiting();
  }

  /** A claim that ran no job ended (lost, or its run did not start). */
  claimDropped(): void {
    this.claims -= 1;
  }

  /** A run's job ended: its claim and its slot are free (the slot goes to the next claimed run waiting). */
  runEnded(): void {
    this.claims -= 1;
    this.running -= 1;
    this.ends.push(this.options.clock.now());
    this.grantWaiting();
  }

  /** No claim from now on; claimed runs waiting for a slot are told none comes. */
  stop(): void {
    this.stopped = true;
    if (this.resumeTimer) this.options.clock.clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    for (const waiter of this.waiters.splice(0)) waiter.grant(false);
  }

  private grantWaiting(): void {
    const concurrency = this.options.concurrency();
    while (this.running < concurrency && this.waiters.length > 0) {
      this.running += 1;
      this.waiters.shift()!.grant(true);
    }
  }

  /** How many claims may go ahead of the slots now: the runs that ended in the last window. */
  private aheadRoom(nowMs: number, concurrency: number): number {
    const sinceMs = nowMs - AHEAD_WINDOW_MS;
    while (this.endsHead < this.ends.length && this.ends[this.endsHead]! < sinceMs) this.endsHead++;
    if (this.endsHead > 1024 && this.endsHead * 2 > this.ends.length) {
      this.ends = this.ends.slice(this.endsHead);
      this.endsHead = 0;
    }
    return Math.min(concurrency, this.ends.length - this.endsHead);
  }

  private resumeBackupsLater(nowMs: number): void {
    if (nowMs >= this.backupsPausedUntilMs || this.resumeTimer) return;
    this.resumeTimer = this.options.clock.setTimeout(() => {
      this.resumeTimer = undefined;
      this.options.onBackupsResume();
    }, this.backupsPausedUntilMs - nowMs);
  }
}

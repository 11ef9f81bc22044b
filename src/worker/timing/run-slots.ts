/**
 * An instance's run slots (`--concurrency`): which due tasks are claimed now. A task takes a
 * slot from its claim until its job has ended.
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

export interface RunSlotsOptions {
  clock: Clock;
  /** How long past its date another instance's task waits before this one claims it. */
  graceMs: number;
  /** Backups may be claimed again after a pause: try again. */
  onBackupsResume(): void;
}

/** Where the next due task comes from (held-tasks.ts). */
export interface DueTasks {
  nextDue(): HeldTask | undefined;
  putBack(task: HeldTask): void;
}

export class RunSlots {
  private used = 0;
  private backupsPausedUntilMs = 0;
  private backupWindow = 1;
  private backupsClaiming = 0;
  private resumeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RunSlotsOptions) {}

  /** Slots in use: tasks being claimed or run. */
  get inUse(): number {
    return this.used;
  }

  /** Due tasks to claim now, one slot each: while a slot is free, own tasks first, backups a few at a time. */
  fill(due: DueTasks, concurrency: number): HeldTask[] {
    const wave: HeldTask[] = [];
    const nowMs = this.options.clock.now();
    while (this.used < concurrency) {
      const task = due.nextDue();
      if (!task) break;
      if (task.backup && (nowMs < this.backupsPausedUntilMs || this.backupsClaiming >= this.backupWindow)) {
        // Backups come after every task of our own in the queue: nothing of ours waits either.
        due.putBack(task);
        this.resumeBackupsLater(nowMs);
        break;
      }
      this.used += 1;
      if (task.backup) this.backupsClaiming += 1;
      wave.push(task);
    }
    return wave;
  }

  /** A backup's claim came back: won, the window opens by one; lost, it closes and backups pause. */
  backupAnswered(won: boolean, concurrency: number): void {
    this.backupsClaiming -= 1;
    if (won) {
      this.backupWindow = Math.min(concurrency, MAX_BACKUP_WINDOW, this.backupWindow + 1);
    } else {
      // Another instance was first to a task of its own share: its owner is at work there.
      this.backupWindow = 1;
      this.backupsPausedUntilMs = this.options.clock.now() + this.options.graceMs;
    }
  }

  /** A slot is free again (the claim was lost, the job ended, the run did not start). */
  free(): void {
    this.used -= 1;
  }

  stop(): void {
    if (this.resumeTimer) this.options.clock.clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }

  private resumeBackupsLater(nowMs: number): void {
    if (nowMs >= this.backupsPausedUntilMs || this.resumeTimer) return;
    this.resumeTimer = this.options.clock.setTimeout(() => {
      this.resumeTimer = undefined;
      this.options.onBackupsResume();
    }, this.backupsPausedUntilMs - nowMs);
  }
}

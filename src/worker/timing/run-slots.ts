/**
 * An instance's run slots (`--concurrency`): which due tasks are claimed now, and which claimed
 * runs may start. At most `concurrency` jobs run at once.
 *
 * Claims go ahead of the slots while the slots turn over fast: once runs end quickly (as many
 * claims ahead as runs ended in the last AHEAD_WINDOW_MS, at most `concurrency`), the next
 * wave is claimed while this one runs, and starts the moment a slot is free instead of a claim
 * write later. Slots go in claim order (the ready queue's: priority, then date): a claim into a
 * free slot holds it from the claim on, as before its date; a claim ahead queues for the next
 * slot freed, and waits at most `maxSlotWaitMs`: past it, it is handed back (a job that suddenly
 * runs long must not keep another instance from a task this one cannot start). Long runs claim
 * nothing ahead. Backups, and a worker name with limits (config `limits`), claim only into free
 * slots.
 *
 * Backups (another live instance's tasks, still unclaimed past their grace: their owner is busy)
 * are claimed a few at a time, one more at once with each one won, up to MAX_BACKUP_WINDOW: a
 * busy owner catches up at the end of its backlog, where a thief that took many at once would
 * lose most of them to it. A backup lost to its owner closes the window to one and pauses
 * backups for a grace period. (An owner that is gone is no owner: its share is split among the
 * live instances and claimed as their own.)
 */
import type { Clock } from '../../clock';
import { Fifo } from '../../fifo';
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
  /** The longest a claim ahead waits for a free slot before it is handed back. */
  maxSlotWaitMs: number;
  /** Backups may be claimed again after a pause: try again. */
  onBackupsResume(): void;
}

/** Where the next due task comes from (held-tasks.ts). */
export interface DueTasks {
  nextDue(): HeldTask | undefined;
  putBack(task: HeldTask): void;
}

/** A claimed task's place: a run slot held, or its turn for the next one freed. */
export interface RunSlot {
  /** True: the slot is this run's. A promise while it waits: true once it is, false when none came in time or the slots stopped. */
  readonly taken: true | Promise<boolean>;
}

/** One claim's slot, as RunSlots tracks it. */
class ClaimSlot implements RunSlot {
  constructor(readonly id: string) {}

  taken: true | Promise<boolean> = true;
  state: 'held' | 'waiting' | 'released' = 'held';
  resolve: ((taken: boolean) => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class RunSlots {
  /** Slots held: jobs running, or claimed runs waiting for their date. */
  private held = 0;
  /** Claims ahead waiting for a slot, by task id, in claim order (a Map keeps insertion order). */
  private readonly waiting = new Map<string, ClaimSlot>();
  /** When recent runs ended (local clock), oldest first. */
  private readonly ends = new Fifo<number>();
  private backupsPausedUntilMs = 0;
  private backupWindow = 1;
  private backupsClaiming = 0;
  private resumeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RunSlotsOptions) {}

  /** Slots in use: tasks being claimed or run, claims ahead not counted. */
  get inUse(): number {
    return this.held;
  }

  /**
   * Due tasks to claim now, each with its slot: while a slot is free (or, with `ahead`, a claim
   * ahead is allowed), own tasks first, backups a few at a time and only into free slots.
   */
  fill(due: DueTasks, ahead: boolean): Array<{ task: HeldTask; slot: RunSlot }> {
    const wave: Array<{ task: HeldTask; slot: RunSlot }> = [];
    const nowMs = this.options.clock.now();
    const concurrency = this.options.concurrency();
    const limit = concurrency + (ahead ? this.aheadRoom(nowMs, concurrency) : 0);
    while (this.held + this.waiting.size < limit) {
      const task = due.nextDue();
      if (!task) break;
      const free = this.held < concurrency && this.waiting.size === 0;
      if (task.backup && (!free || nowMs < this.backupsPausedUntilMs || this.backupsClaiming >= this.backupWindow)) {
        // Backups come after every task of our own in the queue: nothing of ours waits either.
        due.putBack(task);
        if (free) this.resumeBackupsLater(nowMs);
        break;
      }
      if (task.backup) this.backupsClaiming += 1;
      wave.push({ task, slot: free ? this.hold(task.id) : this.queue(task.id) });
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
   * The claim of `slot` is over: its job ended (`ran`), or it was lost or did not start. Its slot
   * goes to the next claim waiting; its place in line, if it still waited, to the one after it.
   */
  release(slot: RunSlot, ran: boolean): void {
    const own = slot as ClaimSlot;
    if (ran) this.ends.push(this.options.clock.now());
    if (own.state === 'held') {
      own.state = 'released';
      this.held -= 1;
      this.grantWaiting();
    } else {
      this.leaveLine(own);
    }
  }

  /**
   * The claim ahead of task `id` stops waiting for a slot, if it waits: a user's request or a
   * newer version of the task came, which its run's start gate answers at once instead.
   */
  stopWaiting(id: string): void {
    const slot = this.waiting.get(id);
    if (slot) this.leaveLine(slot);
  }

  /** No claim from now on; claims waiting for a slot are told none comes. */
  stop(): void {
    if (this.resumeTimer) this.options.clock.clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    for (const slot of [...this.waiting.values()]) this.leaveLine(slot);
  }

  private hold(id: string): ClaimSlot {
    this.held += 1;
    return new ClaimSlot(id);
  }

  private queue(id: string): ClaimSlot {
    const slot = new ClaimSlot(id);
    slot.state = 'waiting';
    slot.taken = new Promise<boolean>((resolve) => (slot.resolve = resolve));
    slot.timer = this.options.clock.setTimeout(() => this.leaveLine(slot), this.options.maxSlotWaitMs);
    this.waiting.set(id, slot);
    return slot;
  }

  /** A claim ahead leaves the line without a slot (lost, timed out, stopped): told none comes. */
  private leaveLine(slot: ClaimSlot): void {
    if (slot.state !== 'waiting') return;
    this.waiting.delete(slot.id);
    slot.state = 'released';
    this.settle(slot, false);
  }

  private settle(slot: ClaimSlot, taken: boolean): void {
    if (slot.timer) this.options.clock.clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.resolve?.(taken);
    slot.resolve = undefined;
  }

  private grantWaiting(): void {
    const concurrency = this.options.concurrency();
    for (const slot of this.waiting.values()) {
      if (this.held >= concurrency) break;
      this.waiting.delete(slot.id);
      this.held += 1;
      slot.state = 'held';
      this.settle(slot, true);
    }
  }

  /** How many claims may go ahead of the slots now: the runs that ended in the last window. */
  private aheadRoom(nowMs: number, concurrency: number): number {
    const sinceMs = nowMs - AHEAD_WINDOW_MS;
    for (let oldest = this.ends.peek(); oldest !== undefined && oldest < sinceMs; oldest = this.ends.peek()) this.ends.shift();
    return Math.min(concurrency, this.ends.size);
  }

  private resumeBackupsLater(nowMs: number): void {
    if (nowMs >= this.backupsPausedUntilMs || this.resumeTimer) return;
    this.resumeTimer = this.options.clock.setTimeout(() => {
      this.resumeTimer = undefined;
      this.options.onBackupsResume();
    }, this.backupsPausedUntilMs - nowMs);
  }
}

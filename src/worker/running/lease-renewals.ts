/**
 * The leases of running tasks, renewed a third of the lease after the claim (or the last
 * renewal), so that a live run is never taken over; those that fall due close together go as
 * one batch, one bulk write. One timer for the whole instance, however many runs.
 *
 * Renewals are due in the order they were asked for (each a fixed time after now), so a queue
 * in that order finds the next one at its head.
 */
import type { Clock } from '../../clock';
import { Fifo } from '../../fifo';
import type { WriteContext } from '../../task/writes';
import type { HeldTasks } from '../held-tasks';
import type { Planned, TaskWriter } from '../writer';

export interface LeaseRenewalsParts {
  clock: Clock;
  /** A third of the lease. */
  everyMs: number;
  tasks: Pick<HeldTasks, 'get'>;
  writer: Pick<TaskWriter, 'write'>;
  writeContext(): WriteContext;
  warn(line: string): void;
}

/** Renewals due within this share of the interval of the first one go with it. */
const BATCH_SHARE = 0.1;

export class LeaseRenewals {
  /** Task id → when its renewal is due (local clock, epoch ms). */
  private readonly dueAt = new Map<string, number>();
  /** (id, due) in the order asked; an entry whose due no longer matches `dueAt` is stale. */
  private readonly queue = new Fifo<{ id: string; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;
  private stopped = false;

  private readonly clock: Clock;
  private readonly everyMs: number;

  constructor(private readonly parts: LeaseRenewalsParts) {
    this.clock = parts.clock;
    this.everyMs = parts.everyMs;
  }

  /** Renew the lease of `id` one interval from now. */
  track(id: string): void {
    if (this.stopped) return;
    const atMs = this.clock.now() + this.everyMs;
    this.dueAt.set(id, atMs);
    this.queue.push({ id, atMs });
    if (atMs < this.armedForMs) this.arm(atMs);
  }

  /** The run is over: nothing due for it any more. */
  untrack(id: string): void {
    this.dueAt.delete(id);
  }

  /**
   * Renew the leases of these running tasks now, in one write (unless a renewal of one is on
   * its way, or its run no longer holds the task). What the answers say of each run (a cancel,
   * a delete, a takeover came meanwhile) the task takes in itself; a run going on is renewed
   * again an interval later.
   */
  renew(ids: readonly string[]): void {
    const ctx = this.parts.writeContext();
    const planned: Planned[] = [];
    for (const id of ids) {
      const task = this.parts.tasks.get(id);
      const doc = task?.renew(ctx);
      if (task && doc) planned.push({ task, transition: 'renew', doc });
    }
    if (planned.length === 0) return;
    void this.parts.writer
      .write(planned)
      .then((outcomes) =>
        planned.forEach(({ task }, index) => {
          const seen = task.renewed(outcomes[index]!);
          if (seen.kind === 'failed') this.parts.warn(`lease renewal of task ${task.id} failed: ${seen.error.message}`);
          else if (seen.kind === 'renew') this.renew([task.id]);
          if (task.phase === 'running' && !task.run?.ended && !this.dueAt.has(task.id)) this.track(task.id);
        }),
      )
      .catch((err: Error) => this.parts.warn(`lease renewal failed: ${err.message}`));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(atMs: number): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.armedForMs = atMs;
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, atMs - this.clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedForMs = Infinity;
    const untilMs = this.clock.now() + this.everyMs * BATCH_SHARE;
    const due: string[] = [];
    for (let next = this.queue.peek(); next; next = this.queue.peek()) {
      const { id, atMs } = next;
      if (this.dueAt.get(id) !== atMs) {
        this.queue.shift();
        continue;
      }
      if (atMs > untilMs) break;
      this.queue.shift();
      this.dueAt.delete(id);
      due.push(id);
    }
    const next = this.queue.peek();
    if (next && !this.stopped) this.arm(next.atMs);
    if (due.length > 0) this.renew(due);
  }
}

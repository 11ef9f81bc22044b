/**
 * When the leases of running tasks are renewed: a third of the lease after the claim (or the
 * last renewal), so that a live run is never taken over, and those that fall due close together
 * as one batch, one bulk write. One timer for the whole instance, however many runs.
 *
 * Renewals are due in the order they were asked for (each a fixed time after now), so a queue
 * in that order finds the next one at its head.
 */
import type { Clock } from '../../clock';

/** Renewals due within this share of the interval of the first one go with it. */
const BATCH_SHARE = 0.1;

export class LeaseRenewals {
  /** Task id → when its renewal is due (local clock, epoch ms). */
  private readonly dueAt = new Map<string, number>();
  /** (id, due) in the order asked; an entry whose due no longer matches `dueAt` is stale. */
  private queue: Array<{ id: string; atMs: number }> = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** A third of the lease. */
    private readonly everyMs: number,
    /** The tasks whose renewal is due now. */
    private readonly onDue: (ids: string[]) => void,
  ) {}

  /** Renew the lease of `id` one interval from now. */
  track(id: string): void {
    if (this.stopped) return;
    const atMs = this.clock.now() + this.everyMs;
    this.dueAt.set(id, atMs);
    this.queue.push({ id, atMs });
    if (atMs < this.armedForMs) this.arm(atMs);
  }

  /** The run is over, or a renewal of it is on its way: nothing due for it until tracked again. */
  untrack(id: string): void {
    this.dueAt.delete(id);
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
    while (this.head < this.queue.length) {
      const { id, atMs } = this.queue[this.head]!;
      if (this.dueAt.get(id) !== atMs) {
        this.head++;
        continue;
      }
      if (atMs > untilMs) break;
      this.head++;
      this.dueAt.delete(id);
      due.push(id);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    const next = this.queue[this.head];
    if (next && !this.stopped) this.arm(next.atMs);
    if (due.length > 0) this.onDue(due);
  }
}

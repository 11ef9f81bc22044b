/**
 * The seed's per-second timer emitter, made exact. Held tasks are grouped in buckets by
 * the wall-clock second they are due in. One timer is armed at a time:
 * - while the earliest bucket is in a later second, a coarse tick aligned to that second's
 *   start (recomputed from the clock at every arm, so it never drifts), in steps of at most
 *   60 s so that laptop sleep or a clock jump cannot make it late or early;
 * - inside the due second, a fine timer for the exact millisecond of the next task.
 * When a timer fires the clock is read again and only tasks whose date has come are
 * emitted: Node may fire a timer a millisecond early, a task never starts early.
 */
import { MAX_TIMER_STEP_MS, type Clock } from '../../clock';

export class SecondTimer {
  /** second (epoch s) → task id → due epoch ms */
  private readonly buckets = new Map<number, Map<string, number>>();
  /** due epoch ms of each held id, to find its bucket on removal */
  private readonly dueAt = new Map<string, number>();
  /** bucket seconds, ascending */
  private seconds: number[] = [];
  private handle: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** Called with the ids that are due, earliest first. */
    private readonly onDue: (ids: string[]) => void,
  ) {}

  get size(): number {
    return this.dueAt.size;
  }

  has(id: string): boolean {
    return this.dueAt.has(id);
  }

  /** Tasks due by `nowMs` that the timer has yet to hand on (it fires in a later turn). */
  dueBy(nowMs: number): number {
    let count = 0;
    const nowSecond = Math.floor(nowMs / 1000);
    for (const second of this.seconds) {
      if (second > nowSecond) break;
      for (const dueMs of this.buckets.get(second)!.values()) if (dueMs <= nowMs) count++;
    }
    return count;
  }

  /** Hold `id` until `dueMs` (replacing an earlier date for the same id). */
  add(id: string, dueMs: number): void {
    if (this.stopped) return;
    this.remove(id, false);
    const second = Math.floor(dueMs / 1000);
    let bucket = this.buckets.get(second);
    if (!bucket) {
      this.buckets.set(second, (bucket = new Map()));
      insertSorted(this.seconds, second);
    }
    bucket.set(id, dueMs);
    this.dueAt.set(id, dueMs);
    // A timer that fires now takes every task due by then: a burst of overdue tasks arms once.
    if (dueMs < this.armedFor && this.armedFor > this.clock.now()) this.arm();
  }

  remove(id: string, rearm = true): boolean {
    const dueMs = this.dueAt.get(id);
    if (dueMs === undefined) return false;
    this.dueAt.delete(id);
    const second = Math.floor(dueMs / 1000);
    const bucket = this.buckets.get(second);
    bucket?.delete(id);
    if (bucket && bucket.size === 0) {
      this.buckets.delete(second);
      const at = this.seconds.indexOf(second);
      if (at >= 0) this.seconds.splice(at, 1);
    }
    if (rearm && this.dueAt.size === 0) this.disarm();
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private disarm(): void {
    if (this.handle) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private arm(): void {
    this.disarm();
    if (this.stopped || this.seconds.length === 0) return;
    const now = this.clock.now();
    const firstSecond = this.seconds[0]!;
    const nowSecond = Math.floor(now / 1000);
    let target: number;
    if (firstSecond > nowSecond) {
      target = firstSecond * 1000; // coarse: the start of the due second
    } else {
      target = Math.min(...this.buckets.get(firstSecond)!.values()); // fine: the exact millisecond
    }
    const wait = Math.min(Math.max(0, target - now), MAX_TIMER_STEP_MS);
    this.armedFor = now + wait;
    this.handle = this.clock.setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.handle = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    const due: Array<[string, number]> = [];
    const nowSecond = Math.floor(now / 1000);
    for (const second of this.seconds) {
      if (second > nowSecond) break;
      for (const [id, dueMs] of this.buckets.get(second)!) if (dueMs <= now) due.push([id, dueMs]);
    }
    for (const [id] of due) this.remove(id, false);
    this.arm();
    if (due.length > 0) {
      due.sort((a, b) => a[1] - b[1]);
      this.onDue(due.map(([id]) => id));
    }
  }
}

function insertSorted(list: number[], value: number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, value);
}

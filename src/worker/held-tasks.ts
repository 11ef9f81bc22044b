/**
 * The tasks an instance holds (one HeldTask each) and where each one waits: in the per-second
 * timer until its claim time, then in the ready queue (under config `limits`) until a run slot
 * is free. And what the instance remembers of tasks it let go:
 * - the revision it last wrote of each, for a minute: a window query or a feed batch that left
 *   the database before that write can still bring the older revision afterwards (in a cluster
 *   a feed may even replay one); taken for news, it would send a claim that can only lose;
 * - its claims that lost in a cluster (docs/spec.md §7, a 202): the database may show such a claim for
 *   a while, with our live lease, and it is not ours to hold or run.
 */
import type { Clock } from '../clock';
import type { LimitConfig } from '../config/types';
import { Fifo } from '../fifo';
import { leaseIsLive } from '../task/decide';
import { revGeneration } from '../revision';
import type { TaskDoc } from '../types';
import { HeldTask } from './held-task';
import { FlowQueue } from './timing/flow-queue';
import { SecondTimer } from './timing/second-timer';

/** How long a written revision is remembered: far longer than a query or a feed batch takes. */
const REMEMBER_MS = 60_000;

export interface HeldTasksOptions {
  worker: string;
  instance: string;
  clock: Clock;
  /** config `limits`: rate and concurrency limits of worker names and jobs. */
  limits: Readonly<Record<string, LimitConfig>>;
  /** A task of this instance's share is claimed this long before its date. */
  claimAheadMs: number;
  /** Held tasks whose claim time has come (the timer). */
  onDue(ids: readonly string[]): void;
  /** A limit has room again (the ready queue's timer, a change of the live instances). */
  onRoom(): void;
  /** A task starts that had to wait for `limit`. */
  onThrottled(id: string, limit: string, waitedMs: number): void;
}

export class HeldTasks {
  /** Due tasks waiting for a run slot, under config `limits`. */
  readonly ready: FlowQueue;
  private readonly tasks = new Map<string, HeldTask>();
  private readonly timer: SecondTimer;
  /** Task id → the generation last written of a task let go, and until when it is remembered. */
  private readonly written = new Map<string, { generation: number; untilMs: number }>();
  /** Ids in the order they were remembered, to forget them after REMEMBER_MS. */
  private readonly writtenOrder = new Fifo<{ id: string; untilMs: number }>();
  /** Task id → the revision of a claim of ours that lost in a cluster. */
  private readonly stoodDown = new Map<string, string>();

  constructor(private readonly options: HeldTasksOptions) {
    this.timer = new SecondTimer(options.clock, options.onDue);
    this.ready = new FlowQueue({
      worker: options.worker,
      instance: options.instance,
      limits: options.limits,
      clock: options.clock,
      claimAheadMs: options.claimAheadMs,
      onAvailable: options.onRoom,
      onThrottled: options.onThrottled,
    });
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Tasks whose claim time has come: in the ready queue, or in the timer about to hand them on. */
  dueCount(): number {
    return this.ready.size + this.timer.dueBy(this.options.clock.now());
  }

  get(id: string): HeldTask | undefined {
    return this.tasks.get(id);
  }

  values(): IterableIterator<HeldTask> {
    return this.tasks.values();
  }

  /** The HeldTask of `doc`'s task (made when missing), out of the timer and the ready queue. */
  idle(doc: TaskDoc): HeldTask {
    let task = this.tasks.get(doc._id);
    if (!task) this.tasks.set(doc._id, (task = new HeldTask(doc, this.options.instance)));
    else this.unqueue(task);
    return task;
  }

  /** Out of the timer and the ready queue (still held). */
  unqueue(task: HeldTask): void {
    this.timer.remove(task.id);
    if (task.phase === 'due') this.ready.remove(task.id);
  }

  /** In the timer until `claimAtMs`. */
  wake(task: HeldTask, claimAtMs: number): void {
    this.timer.add(task.id, claimAtMs);
  }

  /** Due: into the ready queue, by (own share, priority, date). False when it is not held (it moved on meanwhile). */
  makeDue(task: HeldTask): boolean {
    if (!task.becomeDue()) return false;
    const parsed = task.task!;
    this.ready.push(task.id, { dueMs: parsed.dueMs, backup: task.backup, priority: parsed.priority }, parsed.job.name);
    return true;
  }

  /** The next due task for a free slot, its start reserved in its limits; undefined when none may go now. */
  nextDue(): HeldTask | undefined {
    for (let id = this.ready.pop(); id !== undefined; id = this.ready.pop()) {
      const task = this.tasks.get(id);
      if (task?.phase === 'due') return task;
      // Popped, so its limits reserved room for it: given back.
      this.ready.release(id);
    }
    return undefined;
  }

  /** A due task popped but not claimed now (a backup that must wait): back in its place. */
  putBack(task: HeldTask): void {
    this.ready.release(task.id);
    const parsed = task.task!;
    this.ready.push(task.id, { dueMs: parsed.dueMs, backup: task.backup, priority: parsed.priority }, parsed.job.name);
  }

  /** Let go of a task, unless something of it is in flight or running here. */
  forget(id: string): void {
    const task = this.tasks.get(id);
    if (!task || !task.idle) return;
    this.unqueue(task);
    this.tasks.delete(id);
  }

  /** Let go of a task whatever it is doing (its run is over, its hand-back written). */
  delete(id: string): void {
    this.tasks.delete(id);
  }

  /** Let go of a task whose last write here was `written`: older copies of it are dropped for a while. */
  letGoAfter(written: TaskDoc): void {
    const nowMs = this.options.clock.now();
    this.tasks.delete(written._id);
    const untilMs = nowMs + REMEMBER_MS;
    this.written.set(written._id, { generation: revGeneration(written._rev), untilMs });
    this.writtenOrder.push({ id: written._id, untilMs });
    this.expire(nowMs);
  }

  /** `doc` is of a task not held, and older than what this instance last wrote of it. */
  isStale(doc: TaskDoc): boolean {
    if (this.tasks.has(doc._id)) return false;
    this.expire(this.options.clock.now());
    const known = this.written.get(doc._id);
    return known !== undefined && revGeneration(doc._rev) < known.generation;
  }

  /** Our claim of `id`, revision `rev`, reached fewer copies than a quorum: not ours (docs/spec.md §7). */
  standDown(id: string, rev: string): void {
    this.stoodDown.set(id, rev);
  }

  /**
   * A claim of ours that lost in a cluster may still be what the database shows, with our live
   * lease: it is not ours to hold or run. Once its lease has run out the task is decided as any
   * other (the lease sweep takes it over).
   */
  isStoodDown(doc: TaskDoc, nowMs: number): boolean {
    const rev = this.stoodDown.get(doc._id);
    if (rev === undefined) return false;
    if (doc._rev === rev && leaseIsLive(doc.lease, nowMs)) return true;
    if (doc._rev !== rev) this.stoodDown.delete(doc._id);
    return false;
  }

  /** Tasks held by the status their document has now (scheduled, waiting, running...). */
  byStatus(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const task of this.tasks.values()) {
      const status = typeof task.doc.status === 'string' ? task.doc.status : 'waiting';
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    return counts;
  }

  /** No timer from now on, and nothing waits in the ready queue (the instance stops). */
  stop(): void {
    this.timer.stop();
    this.ready.clear();
    this.ready.stop();
  }

  private expire(nowMs: number): void {
    const order = this.writtenOrder;
    for (let oldest = order.peek(); oldest && oldest.untilMs <= nowMs; oldest = order.peek()) {
      order.shift();
      if (this.written.get(oldest.id)?.untilMs === oldest.untilMs) this.written.delete(oldest.id);
    }
  }
}

/**
 * The tasks an instance holds (one HeldTask each), and what it remembers of tasks it let go:
 * - the revision it last wrote of each, for a minute: a window query or a feed batch that left
 *   the database before that write can still bring the older revision afterwards (in a cluster
 *   a feed may even replay one); taken for news, it would send a claim that can only lose;
 * - its claims that lost in a cluster (SPEC §7, a 202): the database may show such a claim for
 *   a while, with our live lease, and it is not ours to hold or run.
 */
import { leaseIsLive } from '../task/decide';
import { revGeneration } from '../revision';
import type { TaskDoc } from '../types';
import { HeldTask } from './held-task';

/** How long a written revision is remembered: far longer than a query or a feed batch takes. */
const REMEMBER_MS = 60_000;

export class HeldTasks {
  private readonly tasks = new Map<string, HeldTask>();
  /** Task id → the generation last written of a task let go, and until when it is remembered. */
  private readonly written = new Map<string, { generation: number; untilMs: number }>();
  /** Ids in the order they were remembered, to forget them after REMEMBER_MS. */
  private readonly writtenOrder: Array<{ id: string; untilMs: number }> = [];
  private writtenHead = 0;
  /** Task id → the revision of a claim of ours that lost in a cluster. */
  private readonly stoodDown = new Map<string, string>();

  constructor(private readonly instance: string) {}

  get size(): number {
    return this.tasks.size;
  }

  get(id: string): HeldTask | undefined {
    return this.tasks.get(id);
  }

  values(): IterableIterator<HeldTask> {
    return this.tasks.values();
  }

  /** The HeldTask of `doc`'s task, made when missing. */
  take(doc: TaskDoc): HeldTask {
    let task = this.tasks.get(doc._id);
    if (!task) this.tasks.set(doc._id, (task = new HeldTask(doc, this.instance)));
    return task;
  }

  /** Let go of a task. */
  delete(id: string): void {
    this.tasks.delete(id);
  }

  /** Let go of a task whose last write here was `written`: older copies of it are dropped for a while. */
  letGoAfter(written: TaskDoc, nowMs: number): void {
    this.tasks.delete(written._id);
    const untilMs = nowMs + REMEMBER_MS;
    this.written.set(written._id, { generation: revGeneration(written._rev), untilMs });
    this.writtenOrder.push({ id: written._id, untilMs });
    this.expire(nowMs);
  }

  /** `doc` is of a task not held, and older than what this instance last wrote of it. */
  isStale(doc: TaskDoc, nowMs: number): boolean {
    if (this.tasks.has(doc._id)) return false;
    this.expire(nowMs);
    const known = this.written.get(doc._id);
    return known !== undefined && revGeneration(doc._rev) < known.generation;
  }

  /** Our claim of `id`, revision `rev`, reached fewer copies than a quorum: not ours (SPEC §7). */
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

  private expire(nowMs: number): void {
    const order = this.writtenOrder;
    while (this.writtenHead < order.length && order[this.writtenHead]!.untilMs <= nowMs) {
      const { id, untilMs } = order[this.writtenHead++]!;
      if (this.written.get(id)?.untilMs === untilMs) this.written.delete(id);
    }
    if (this.writtenHead > 1024 && this.writtenHead * 2 > order.length) {
      order.splice(0, this.writtenHead);
      this.writtenHead = 0;
    }
  }
}

/**
 * The last revision this instance wrote of tasks it no longer holds (a run recorded, a verdict
 * written), for a minute. A window query or a feed batch that left the database before that
 * write can still bring the older revision afterwards (in a cluster a feed may even replay
 * one); taken for news, it would send a claim that can only lose. Such documents are dropped.
 */
import { revGeneration } from '../revision';
import type { TaskDoc } from '../types';

/** How long a written revision is remembered: far longer than a query or a feed batch takes. */
const REMEMBER_MS = 60_000;

export class RecentWrites {
  private readonly generations = new Map<string, { generation: number; untilMs: number }>();
  /** Ids in the order they were remembered, to forget them after REMEMBER_MS. */
  private readonly order: Array<{ id: string; untilMs: number }> = [];

  remember(doc: TaskDoc, nowMs: number): void {
    const untilMs = nowMs + REMEMBER_MS;
    this.generations.set(doc._id, { generation: revGeneration(doc._rev), untilMs });
    this.order.push({ id: doc._id, untilMs });
    this.expire(nowMs);
  }

  /** `doc` is older than what this instance wrote of it. */
  isStale(doc: TaskDoc, nowMs: number): boolean {
    this.expire(nowMs);
    const known = this.generations.get(doc._id);
    return known !== undefined && revGeneration(doc._rev) < known.generation;
  }

  forget(id: string): void {
    this.generations.delete(id);
  }

  private expire(nowMs: number): void {
    while (this.order.length > 0 && this.order[0]!.untilMs <= nowMs) {
      const { id, untilMs } = this.order.shift()!;
      if (this.generations.get(id)?.untilMs === untilMs) this.generations.delete(id);
    }
  }
}

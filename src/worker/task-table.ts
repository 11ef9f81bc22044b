/**
 * The tasks an instance holds: one Entry each (entry.ts), the per-second timer that brings a
 * held task to its claim, the ready queue of due tasks waiting for a run slot, and what is
 * remembered of tasks let go (a revision written, a claim that stood down in a cluster).
 */
import type { Clock } from '../clock';
import { leaseIsLive } from '../task/decide';
import type { ParsedTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { newEntry, type Entry } from './entry';
import type { FlowQueue } from './flow-queue';
import { RecentWrites } from './recent-writes';
import { SecondTimer } from './second-timer';

export interface TaskTableOptions {
  clock: Clock;
  /** Due tasks waiting for a run slot, under config `limits` (flow-queue.ts). */
  ready: FlowQueue;
  /** How long before its date a task of this instance's share is claimed. */
  claimAheadMs: number;
  /** How long past its date another instance's task waits before this one claims it. */
  graceMs: number;
  /** Held tasks whose claim time has come. */
  onDue(ids: string[]): void;
}

export class TaskTable {
  readonly ready: FlowQueue;
  readonly timer: SecondTimer;
  private readonly entries = new Map<string, Entry>();
  /** What this instance last wrote of tasks it let go of: older copies arriving late are dropped. */
  private readonly recent = new RecentWrites();
  /** Task id → the revision of a claim of ours that lost in a cluster (see isStoodDown). */
  private readonly stoodDown = new Map<string, string>();

  constructor(private readonly options: TaskTableOptions) {
    this.ready = options.ready;
    this.timer = new SecondTimer(options.clock, options.onDue);
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }

  values(): IterableIterator<Entry> {
    return this.entries.values();
  }

  /** The entry of `doc`'s task, made when missing, holding `doc` and `task` from now on. */
  entry(doc: TaskDoc, task: ParsedTask | undefined): Entry {
    let entry = this.entries.get(doc._id);
    if (!entry) {
      entry = newEntry(doc, task);
      this.entries.set(doc._id, entry);
    }
    entry.doc = doc;
    entry.task = task;
    return entry;
  }

  /**
   * Hold in memory until the claim is due: this instance's share a little before its date, a
   * backup once its grace has passed (from `fromMs`, by default the date).
   */
  hold(doc: TaskDoc, task: ParsedTask, backup: boolean, fromMs = task.dueMs): Entry {
    const entry = this.entry(doc, task);
    if (entry.state === 'ready') this.ready.remove(entry.id);
    entry.state = 'held';
    entry.backup = backup;
    this.timer.add(entry.id, backup ? fromMs + this.options.graceMs : task.dueMs - this.options.claimAheadMs);
    return entry;
  }

  /** Due: into the ready queue, by (own share, priority, date). */
  makeReady(entry: Entry): void {
    entry.state = 'ready';
    const task = entry.task!;
    this.ready.push(entry.id, { dueMs: task.dueMs, backup: entry.backup, priority: task.priority }, task.job.name);
  }

  /** Out of the timer and the ready queue, still held (waiting for its dependencies, say). */
  park(entry: Entry): void {
    this.timer.remove(entry.id);
    this.ready.remove(entry.id);
    entry.state = 'held';
  }

  /** Let go of a task, unless it is being claimed or run here. */
  forget(id: string): void {
    const entry = this.entries.get(id);
    if (entry && (entry.run || entry.state === 'claiming')) return;
    this.timer.remove(id);
    this.ready.remove(id);
    this.entries.delete(id);
  }

  /** Let go of a task whatever it is doing (its run is over, its verdict written). */
  delete(id: string): void {
    this.entries.delete(id);
  }

  /** Let go of a task whose last write here was `written`: older copies of it are dropped for a while. */
  wrote(written: TaskDoc, nowMs: number): void {
    this.entries.delete(written._id);
    this.recent.remember(written, nowMs);
  }

  /** `doc` is older than what this instance last wrote of a task it let go of. */
  isStale(doc: TaskDoc, nowMs: number): boolean {
    return !this.entries.has(doc._id) && this.recent.isStale(doc, nowMs);
  }

  /** Our claim of `id`, revision `rev`, reached fewer copies than a quorum: not ours (SPEC §7). */
  standDown(id: string, rev: string): void {
    this.stoodDown.set(id, rev);
  }

  /**
   * A claim of ours that lost in a cluster (a 202, SPEC §7) may still be what the database
   * shows, with our live lease: it is not ours to hold or run. Once its lease has run out the
   * task is decided as any other (the lease sweep takes it over).
   */
  isStoodDown(doc: TaskDoc, nowMs: number): boolean {
    const rev = this.stoodDown.get(doc._id);
    if (rev === undefined) return false;
    if (doc._rev === rev && leaseIsLive(doc.lease, nowMs)) return true;
    if (doc._rev !== rev) this.stoodDown.delete(doc._id);
    return false;
  }

  /** Tasks held in memory by the status their document has now (scheduled, waiting, running...). */
  byStatus(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const entry of this.entries.values()) {
      const status = typeof entry.doc.status === 'string' ? entry.doc.status : 'waiting';
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    return counts;
  }

  stop(): void {
    this.timer.stop();
    this.ready.clear();
    this.ready.stop();
  }
}

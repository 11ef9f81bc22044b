/**
 * The writes of a held task, through the instance's one TaskWriter, with the task's entry kept
 * right: it is busy while a write is in flight (documents seen meanwhile wait in `pending`), it
 * holds the written document afterwards, and a write lost to another writer hands the task
 * back to `decide()` on the document read back.
 */
import * as writes from '../task/writes';
import type { ParsedTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { isNewer, type Entry } from './entry';
import type { WriteOutcome, WriteReason } from './task-writer';
import type { WorkerCore } from './worker-core';

export class EntryWrites {
  constructor(private readonly core: WorkerCore) {}

  /**
   * One write of `entry`'s task. Returns the written document, or undefined when it lost to
   * another writer (the task is then decided again on the document read back, unless
   * `redecide` is false) or could not be written (dropped: the next window query brings it back).
   */
  async write(entry: Entry, next: TaskDoc, reason: WriteReason, options: { redecide?: boolean } = {}): Promise<TaskDoc | undefined> {
    const { core } = this;
    entry.busy = true;
    let outcome: WriteOutcome;
    try {
      outcome = await core.writer.write(next, reason, entry.task?.dueMs ?? 0);
    } finally {
      entry.busy = false;
      // The task is idle again: a user's request waiting for that moment goes now.
      if (core.requests.has(entry.id)) queueMicrotask(() => core.requests.serve(entry.id));
    }
    if (outcome.kind === 'written') {
      entry.doc = outcome.doc;
      return outcome.doc;
    }
    if (outcome.kind === 'failed') {
      // Refused, not a conflict (a validate_doc_update, a permission), or the re-read failed:
      // deciding again at once would send the same write again in a loop. The next window
      // query brings the task back.
      core.log.error(`task ${entry.id}: ${reason} failed: ${outcome.error.message}; the next window query will find it`);
      this.drop(entry);
      return undefined;
    }
    // The database may show our contested claim a while longer, with our lease: it is not ours.
    if (outcome.contestedRev !== undefined) {
      core.table.standDown(entry.id, outcome.contestedRev);
      core.events.emit('task:contested', { id: entry.id, during: reason });
    } else {
      core.events.emit('task:conflict', { id: entry.id, during: reason });
    }
    this.drop(entry);
    if (outcome.fresh && options.redecide !== false) core.apply(outcome.fresh);
    return undefined;
  }

  /** Claim the hold: `scheduled` with this instance's lease, until a grace period after the date. */
  async schedule(doc: TaskDoc, task: ParsedTask): Promise<void> {
    const { core } = this;
    const entry = core.table.entry(doc, task);
    core.table.timer.remove(entry.id);
    const written = await this.write(entry, writes.hold(doc, task.dueMs, core.writeContext()), 'schedule');
    if (!written) return;
    core.table.hold(written, task, false);
    core.events.emit('task:scheduled', { id: entry.id, date: new Date(task.dueMs).toISOString() });
    this.afterWrite(entry);
  }

  /** `error` for an invalid task or one whose dependency failed, `canceled` for a cancel. */
  async verdict(doc: TaskDoc, next: TaskDoc, reason: 'error' | 'canceled'): Promise<void> {
    const { core } = this;
    const entry = core.table.entry(doc, undefined);
    const written = await this.write(entry, next, reason);
    if (!written) return;
    core.table.wrote(written, core.clock.now());
    if (reason === 'canceled') core.events.emit('task:canceled', { id: entry.id });
    else core.events.emit('task:invalid', { id: entry.id, message: next.error?.message ?? '' });
  }

  /** A write after which the instance holds nothing of the task (a task marked `waiting`). */
  async writeAndForget(doc: TaskDoc, next: TaskDoc, reason: WriteReason): Promise<void> {
    const entry = this.core.table.entry(doc, undefined);
    if (await this.write(entry, next, reason)) this.core.table.forget(entry.id);
  }

  /** Give a held task back to `waiting` so any instance may take it (shutdown, a limit with no room). */
  async handBack(entry: Entry): Promise<void> {
    const written = await this.write(entry, writes.handBack(entry.doc), 'hand-back', { redecide: false });
    this.core.table.delete(entry.id);
    if (written) this.core.events.emit('task:handed-back', { id: entry.id });
  }

  /** A document seen while a write was in flight is decided once the write is done. */
  afterWrite(entry: Entry): void {
    const pending = entry.pending;
    entry.pending = undefined;
    if (pending && isNewer(pending, entry.doc)) this.core.ingest(pending);
  }

  /** Drop a task this instance failed to write: whatever it held for it goes. */
  private drop(entry: Entry): void {
    entry.busy = false;
    entry.state = 'held';
    this.core.table.forget(entry.id);
  }
}

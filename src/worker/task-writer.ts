/**
 * The one place a worker instance writes a task. Every write is based on the `_rev` last seen;
 * a conflict ("someone else changed it first") is an ordinary outcome carrying the task as it is
 * now, for `decide()` to look at again. A write retried through an outage reports a conflict
 * when its first try landed and only the answer was lost: the document read back is then this
 * very write, and it counts as written.
 */
import { backoffMs, delay } from '../clock';
import { CouchRequestError } from '../errors';
import type { TaskStore, WriteLane } from '../store/types';
import { isOwnWrite } from '../task/decide';
import type { TaskDoc } from '../types';

/** Why an instance writes a task (the `during` of conflicts and log lines). */
export type WriteReason = 'schedule' | 'claim' | 'mark-waiting' | 'hand-back' | 'error' | 'canceled' | 'lease' | 'result' | 'request';

export type WriteOutcome =
  /** Written; `doc` is the task as written, with its new `_rev`. */
  | { kind: 'written'; doc: TaskDoc }
  /**
   * Someone else wrote first. `fresh` is the task as it is now (null: deleted). `contestedRev`:
   * the revision of a claim in a cluster that reached fewer copies than a quorum (SPEC §7): not
   * ours, even when `fresh` shows it.
   */
  | { kind: 'lost'; fresh: TaskDoc | null; contestedRev?: string }
  /** Refused (not a conflict: a validate_doc_update, a permission) or the re-read failed. */
  | { kind: 'failed'; error: Error };

/** Re-reads of a task after a lost write, through passing failures, before giving up. */
const REREAD_TRIES = 20;

export class TaskWriter {
  constructor(
    private readonly store: TaskStore,
    /** Every write goes through this, so a stop can wait for the ones in flight. */
    private readonly track: <T>(work: Promise<T>) => Promise<T>,
  ) {}

  async write(next: TaskDoc, reason: WriteReason, neededByMs = 0): Promise<WriteOutcome> {
    // Claims and results are what a job or a user waits for; every other write can queue
    // behind them, the tasks due first leaving first.
    const lane: WriteLane = reason === 'claim' || reason === 'result' || reason === 'request' ? 'run' : 'hold';
    const claim = reason === 'claim' || reason === 'schedule';
    try {
      const result = await this.track(this.store.write(next, { lane, claim, neededByMs }));
      if (result.ok) return { kind: 'written', doc: result.doc };
      const contestedRev = result.contested?.rev;
      const fresh = await this.reread(next._id);
      if (fresh && contestedRev === undefined && isOwnWrite(fresh, next)) return { kind: 'written', doc: fresh };
      return { kind: 'lost', fresh, ...(contestedRev !== undefined ? { contestedRev } : {}) };
    } catch (err) {
      return { kind: 'failed', error: err as Error };
    }
  }

  /** The task as it is now, through passing failures of the database. */
  async reread(id: string): Promise<TaskDoc | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.get(id);
      } catch (err) {
        if (!(err instanceof CouchRequestError) || !err.transient || attempt >= REREAD_TRIES) throw err;
        await delay(backoffMs(attempt));
      }
    }
  }
}

/**
 * What a store remembers about its writes on a CouchDB cluster (docs/spec.md §7 "Claims in a
 * cluster"; the rules themselves are in cluster-confirm.ts): which revision it last wrote to a
 * quorum of copies, which tasks met a rival (a conflict, a 202), and the kept branches of
 * claims that stood down, looked at again until they are settled. Only a clustered store
 * (n > 1) makes one.
 */
import type { Logger } from '../../log';
import { revGeneration } from '../../revision';
import type { TaskDoc } from '../../types';
import type { BulkAnswer } from '../bulk-docs';
import { dropIfOvertaken, leafRevisions, standDown, sweepStaleBranches, winningLeaf } from './cluster-confirm';
import type { Connection } from '../connection';
import type { WriteKind } from './write-batcher';
import type { WriteAnswer } from './write-outcomes';

/**
 * When a kept branch of a claim that stood down is looked at again (ms after the previous look):
 * soon and often at first, when the owner's next write (a renewal, the finish) usually comes,
 * then less and less, two minutes in all.
 */
const KEPT_BRANCH_CHECKS_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000];
/** How long a closing store gives its kept branches a last look. */
const LAST_LOOK_MS = 2_000;
/** How many tasks the bookkeeping remembers; the oldest go first. */
const REMEMBERED_TASKS = 20_000;

export class ClusterWrites {
  /** The kept branches being watched, by the timer of their next look. */
  private readonly branchWatches = new Map<NodeJS.Timeout, TaskDoc>();
  /** Task id → the revision this store last wrote to a quorum of copies (201). */
  private readonly quorumRevs = new Map<string, string>();
  /** Tasks that met a conflict or a 202 here: their stale branches are swept once they leave running. */
  private readonly contended = new Map<string, true>();
  private closed = false;

  constructor(
    private readonly request: Connection['request'],
    /** The database's n: how many copies a confirming read must see. */
    private readonly replicas: number,
    private readonly log: Logger,
  ) {}

  /** The task as it is: the winner over every copy's leaves (a plain read may come from a lagging copy). */
  async read(id: string): Promise<TaskDoc | null> {
    return winningLeaf(await leafRevisions(this.request, id, this.replicas));
  }

  /**
   * Whether a claim may be sent on `doc._rev`. CouchDB accepts a write on any leaf, a stale
   * branch too: a claim goes only on the revision that wins over every copy (what a lagging
   * copy's _find or feed showed may not). No read is needed where no stale branch can be: on a
   * revision this store itself wrote to a quorum (a later write that reached a quorum makes ours
   * lose anyway: our base is no leaf there any more), or on the first revision (a document with
   * one revision has one branch).
   */
  async mayClaim(doc: TaskDoc): Promise<boolean> {
    if (this.quorumRevs.get(doc._id) === doc._rev || revGeneration(doc._rev) <= 1) return true;
    const winner = await this.read(doc._id);
    if (winner && winner._rev === doc._rev) return true;
    remember(this.contended, doc._id, true);
    return false;
  }

  /**
   * After a `_bulk_docs`: a claim that reached fewer copies than a quorum (the response is a
   * 202; CouchDB marks such rows `accepted`) is not ours, and its outcome becomes a contested
   * conflict. A write that took a task out of `running`/`scheduled` clears the claims left on
   * other branches, in the background.
   */
  async settle(docs: readonly TaskDoc[], answer: BulkAnswer, kinds: readonly WriteKind[], outcomes: WriteAnswer[]): Promise<void> {
    const flagged = answer.rows.some((row) => row?.accepted === true);
    await Promise.all(outcomes.map(async (outcome, index) => {
      if (!outcome.ok) {
        if ('conflict' in outcome) remember(this.contended, docs[index]!._id, true);
        return;
      }
      const id = outcome.doc._id;
      const belowQuorum = answer.status === 202 && (!flagged || answer.rows[index]?.accepted === true);
      if (belowQuorum) {
        this.quorumRevs.delete(id);
        remember(this.contended, id, true);
      } else {
        remember(this.quorumRevs, id, outcome.doc._rev!);
      }
      if (belowQuorum && kinds[index] === 'claim') {
        if (await standDown(this.request, outcome.doc, this.replicas, this.log)) this.watchKeptBranch(outcome.doc);
        outcomes[index] = { ok: false, conflict: true, contestedRev: outcome.doc._rev! };
      } else if (outcome.doc.status !== 'running' && outcome.doc.status !== 'scheduled' && this.contended.delete(id)) {
        // Claims of ours or of rivals met on this task (a conflict, a 202): branches may be left.
        void sweepStaleBranches(this.request, outcome.doc, this.replicas, this.log);
      }
    }));
  }

  /**
   * Tasks the feed shows on a branch beside the revision this store last wrote to a quorum (same
   * generation, another revision): a rival claim that stood down but kept its branch, sorting
   * higher than ours. The task is contended: once this store's write takes it out of `running`
   * (the finish), the rival's branch is swept. Without this, a rival that stops before its owner
   * writes again leaves the conflict behind.
   */
  noticeRivals(docs: readonly TaskDoc[]): void {
    for (const doc of docs) {
      const ours = this.quorumRevs.get(doc._id);
      if (ours !== undefined && doc._rev !== undefined && ours !== doc._rev && revGeneration(ours) === revGeneration(doc._rev)) remember(this.contended, doc._id, true);
    }
  }

  /**
   * Stop watching. The branches still kept get a last look first (bounded in time): an instance
   * that stops right after a burst would otherwise leave the conflicts its claims made.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.branchWatches.keys()) clearTimeout(timer);
    const kept = [...this.branchWatches.values()];
    this.branchWatches.clear();
    const lastLooks = kept.map((written) => dropIfOvertaken(this.request, written, this.replicas, this.log).catch(() => false));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, LAST_LOOK_MS);
      void Promise.all(lastLooks).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * A claim that stood down but kept its branch (cluster-confirm.ts) is looked at again a few
   * times, until a rival's progress shows it is stale and it is deleted, or it is written on.
   */
  private watchKeptBranch(written: TaskDoc, attempt = 0): void {
    const delayMs = KEPT_BRANCH_CHECKS_MS[attempt];
    if (delayMs === undefined || this.closed) return;
    const timer = setTimeout(() => {
      this.branchWatches.delete(timer);
      dropIfOvertaken(this.request, written, this.replicas, this.log).then(
        (settled) => (settled ? undefined : this.watchKeptBranch(written, attempt + 1)),
        () => this.watchKeptBranch(written, attempt + 1),
      );
    }, delayMs);
    timer.unref();
    this.branchWatches.set(timer, written);
  }
}

function remember<V>(map: Map<string, V>, id: string, value: V): void {
  map.delete(id);
  map.set(id, value);
  if (map.size > REMEMBERED_TASKS) map.delete(map.keys().next().value!);
}

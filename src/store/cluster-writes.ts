/**
 * What a store remembers about its writes on a CouchDB cluster (docs/spec.md §7 "Claims in a
 * cluster"; the rules themselves are in cluster-confirm.ts): which revision it last wrote to a
 * quorum of copies, which tasks met a rival (a conflict, a 202), and the kept branches of
 * claims that stood down, looked at again until they are settled. Only a clustered store
 * (n > 1) makes one.
 */
import type { Logger } from '../log';
import { revGeneration } from '../revision';
import type { TaskDoc } from '../types';
import type { BulkAnswer } from './bulk-docs';
import { dropIfOvertaken, leafRevisions, standDown, sweepStaleBranches, winningLeaf } from './cluster-confirm';
import type { Connection } from './connection';
import type { WriteKind } from './write-batcher';
import type { WriteAnswer } from './write-outcomes';

/** When a kept branch of a claim that stood down is looked at again (ms after the previous look). */
const KEPT_BRANCH_CHECKS_MS = [2_000, 5_000, 15_000, 60_000];
/** How many tasks the bookkeeping remembers; the oldest go first. */
const REMEMBERED_TASKS = 20_000;

export class ClusterWrites {
  private readonly branchWatches = new Set<NodeJS.Timeout>();
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

  close(): void {
    this.closed = true;
    for (const timer of this.branchWatches) clearTimeout(timer);
    this.branchWatches.clear();
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
    this.branchWatches.add(timer);
  }
}

function remember<V>(map: Map<string, V>, id: string, value: V): void {
  map.delete(id);
  map.set(id, value);
  if (map.size > REMEMBERED_TASKS) map.delete(map.keys().next().value!);
}

/**
 * What a worker instance knows about one task it holds: the newest document, its parsed form,
 * and where it is in the instance's life cycle. The worker owns `state`, `backup`, `busy`,
 * `pending`; the runner owns `run` and `leaseWrite` while it runs the task.
 */
import type { ParsedTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { revGeneration } from '../revision';
import type { RunHandle } from './run';

/** held: waiting for its second; ready: due, waiting for a slot; claiming; running. */
export type EntryState = 'held' | 'ready' | 'claiming' | 'running';

export interface Entry {
  id: string;
  doc: TaskDoc;
  task: ParsedTask | undefined;
  state: EntryState;
  /** Held as a backup for the instance whose share it is: claimed only past its grace. */
  backup: boolean;
  /** A write or re-read of this task is in flight. */
  busy: boolean;
  /** The newest document seen while busy, applied afterwards. */
  pending: TaskDoc | undefined;
  run: RunHandle | undefined;
  /** The lease heartbeat in flight: the finish write waits for it, so the two never race on one `_rev`. */
  leaseWrite: Promise<void> | undefined;
}

export function newEntry(doc: TaskDoc, task: ParsedTask | undefined): Entry {
  return { id: doc._id, doc, task, state: 'held', backup: false, busy: false, pending: undefined, run: undefined, leaseWrite: undefined };
}

/** A later revision than the one known (the same generation counts: a conflict's winner). */
export function isNewer(incoming: TaskDoc, known: TaskDoc): boolean {
  if (incoming._rev === known._rev) return false;
  return revGeneration(incoming._rev) >= revGeneration(known._rev);
}

/** A newer document seen while this entry's write was in flight. */
export function hasNewerPending(entry: Entry): boolean {
  return entry.pending !== undefined && isNewer(entry.pending, entry.doc);
}

/**
 * `incoming` is a sibling of `known` — written from the same parent revision by someone else —
 * that holds or claims the task: in a cluster, a rival's claim that reached fewer copies than a
 * quorum while `known` (ours, answered 201) reached one. CouchDB may show it for a while as the
 * winner (same length, higher revision id); it never is the owner, and our next write on our
 * own branch makes ours the longer branch again.
 */
export function isRivalClaimBranch(incoming: TaskDoc, known: TaskDoc): boolean {
  return (
    incoming._rev !== known._rev &&
    revGeneration(incoming._rev) === revGeneration(known._rev) &&
    (incoming.status === 'running' || incoming.status === 'scheduled')
  );
}

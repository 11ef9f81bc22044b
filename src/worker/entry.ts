/**
 * What a worker instance knows about one task it holds: the newest document, its parsed form,
 * where it is in the instance's life cycle, and the writes in flight for it.
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
  /** A write or re-read of this task is in flight. */
  busy: boolean;
  /** The newest document seen while busy, applied afterwards. */
  pending: TaskDoc | undefined;
  run: RunHandle | undefined;
  /** The lease heartbeat in flight: the finish write waits for it, so the two never race on one `_rev`. */
  leaseWrite: Promise<void> | undefined;
}

export function newEntry(doc: TaskDoc, task: ParsedTask | undefined): Entry {
  return { id: doc._id, doc, task, state: 'held', busy: false, pending: undefined, run: undefined, leaseWrite: undefined };
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

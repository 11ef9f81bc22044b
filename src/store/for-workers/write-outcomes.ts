/**
 * From what the database answered for each document of a batch to the one answer the worker
 * acts on (`WriteOutcome`): a conflict is read back at once, all of a batch's in one request,
 * and a conflict whose document turns out to be our own write (the first try landed, only its
 * answer was lost, the retry met it) counts as written.
 */
import { revGeneration } from '../../revision';
import type { TaskDoc } from '../../types';
import type { WriteOutcome } from '../types';

/** What the database said of one document, before any read back. */
export type WriteAnswer =
  | { ok: true; doc: TaskDoc }
  /** `contestedRev`: a claim in a cluster that reached fewer copies than a quorum (docs/spec.md §7). */
  | { ok: false; conflict: true; contestedRev?: string }
  | { ok: false; error: Error };

/** Reads several tasks at once (null: deleted or missing); throws when the database cannot answer. */
export type ReadBack = (ids: readonly string[]) => Promise<Map<string, TaskDoc | null>>;

export async function toOutcomes(sent: readonly TaskDoc[], answers: readonly WriteAnswer[], readBack: ReadBack): Promise<WriteOutcome[]> {
  const conflicted = new Set<string>();
  answers.forEach((answer, index) => {
    if (isConflict(answer)) conflicted.add(sent[index]!._id);
  });
  let fresh = new Map<string, TaskDoc | null>();
  let readError: Error | undefined;
  if (conflicted.size > 0) {
    try {
      fresh = await readBack([...conflicted]);
    } catch (err) {
      readError = err as Error;
    }
  }
  return answers.map((answer, index): WriteOutcome => {
    if (answer.ok) return { kind: 'written', doc: answer.doc };
    if ('error' in answer) return { kind: 'failed', error: answer.error };
    if (readError) return { kind: 'failed', error: readError };
    const doc = sent[index]!;
    const now = fresh.get(doc._id) ?? null;
    if (answer.contestedRev !== undefined) return { kind: 'lost', fresh: now, contestedRev: answer.contestedRev };
    if (now && isOwnWrite(now, doc)) return { kind: 'written', doc: now };
    return { kind: 'lost', fresh: now };
  });
}

function isConflict(answer: WriteAnswer): boolean {
  return !answer.ok && 'conflict' in answer;
}

/**
 * The fields a worker writes, compared first: a rival's write (another instance's lease, a
 * user's status, another run's `last_run`) differs in one of them, so the comparison usually
 * ends before it reaches a user's payload.
 */
const WORKER_FIELDS = ['status', 'lease', 'last_run', 'date', 'run_now', 'executions', 'repetitions', 'retries', 'error', 'anchor_date', 'worker'] as const;

/**
 * `found` is the document this instance sent as `sent`, one revision on: a write retried
 * through an outage reports a conflict when its first try landed and only the answer was lost.
 * Only updates are recognised (a worker never creates a task); the fields are compared with key
 * order aside, the worker's own first. This runs only on a conflict, and walks a user's payload
 * only when everything else already matched.
 */
export function isOwnWrite(found: TaskDoc, sent: TaskDoc): boolean {
  if (sent._rev === undefined || revGeneration(found._rev) !== revGeneration(sent._rev) + 1) return false;
  const foundKeys = Object.keys(found).filter((key) => key !== '_rev');
  const sentKeys = new Set(Object.keys(sent).filter((key) => key !== '_rev'));
  if (foundKeys.length !== sentKeys.size || !foundKeys.every((key) => sentKeys.has(key))) return false;
  if (!WORKER_FIELDS.every((field) => sameValue(found[field], sent[field]))) return false;
  return foundKeys.every((key) => sameValue(found[key], sent[key]));
}

/** Equal JSON values, object key order aside. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, index) => sameValue(item, b[index]));
  if (Array.isArray(b)) return false;
  const aRecord = a as Record<string, unknown>;
  const bRecord = b as Record<string, unknown>;
  const aKeys = Object.keys(aRecord);
  if (aKeys.length !== Object.keys(bRecord).length) return false;
  return aKeys.every((key) => Object.prototype.hasOwnProperty.call(bRecord, key) && sameValue(aRecord[key], bRecord[key]));
}

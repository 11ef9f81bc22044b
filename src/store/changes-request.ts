/**
 * Which changes a feed asks `_changes` for, as each server supports it, and what an answer
 * holds. changes.ts makes the requests.
 */
import { BY_WORKER_FILTER } from './schema';
import type { ChangeBatch, FeedOptions, ServerKind } from './types';
import { FINISHED_STATUSES, type TaskDoc } from '../types';

/** @see FeedOptions.batchSize */
export const DEFAULT_BATCH_SIZE = 5000;

interface ChangeRow {
  id: string;
  seq: unknown;
  deleted?: boolean;
  doc?: TaskDoc;
}

export interface ChangesBody {
  results?: ChangeRow[];
  last_seq?: unknown;
}

/** One `_changes` request's method, query and body, without the seq and the common options. */
export interface ChangesRequest {
  method: string;
  qs: Record<string, string | number | boolean>;
  body?: unknown;
}

/**
 * Which changes the worker feed of `worker` shows, as instance `instance` follows it: every
 * deletion (a tombstone has no `worker`; a worker holding the task must learn it is gone), and
 * the worker's tasks except finished ones and this instance's own claims (running under its
 * lease). Those are mostly the echo of its own writes: in a burst, two of every three changes
 * the feed would carry. What a user changes in such a task without changing that (its `data`
 * while it runs, a run now) reaches the instance as a conflict at its next write of the task;
 * a user's write that moves it (a cancel, a pause, waiting) shows. A `scheduled` hold stays in
 * the feed: a user asks for a run now of a held task by writing `run_now` on it, and the
 * instance must see it before the task's date. The same rule three ways: this function (the
 * in-memory store), the selector below (CouchDB) and the `by_worker` filter of `_design/after`
 * (pouchdb-server, for-operators/init.ts), held together by a table test.
 */
export function feedShows(doc: TaskDoc, worker: string, instance?: string): boolean {
  if (doc._deleted === true) return true;
  if (doc.worker !== worker) return false;
  const status = doc.status;
  if ((FINISHED_STATUSES as readonly unknown[]).includes(status)) return false;
  const lease = doc.lease as { instance?: unknown } | undefined;
  const own = instance !== undefined && typeof lease === 'object' && lease !== null && lease.instance === instance;
  return !(own && status === 'running');
}

/** The filter that asks for one worker's changes, as each server supports it. */
export function workerChangesFilter(kind: ServerKind, worker: string, instance?: string): ChangesRequest {
  if (kind === 'pouchdb-server') {
    // `filter=_selector` crashes pouchdb-server 4.2: use the design-document filter there.
    return { method: 'GET', qs: { filter: BY_WORKER_FILTER, worker, ...(instance !== undefined ? { instance } : {}) } };
  }
  // Mango matches no condition on a field a document lacks, negated ones ($nin, $not) included:
  // a task without `status` (it means waiting) needs a clause of its own.
  const unfinished: Record<string, unknown> = { worker, status: { $nin: [...FINISHED_STATUSES] } };
  if (instance !== undefined) unfinished.$nor = [{ 'lease.instance': instance, status: 'running' }];
  const selector = { $or: [{ _deleted: true }, { worker, status: { $exists: false } }, unfinished] };
  return { method: 'POST', qs: { filter: '_selector' }, body: { selector } };
}

/** The request that asks for one worker's changes from `since`. */
export function changesRequest(kind: ServerKind, options: FeedOptions, since: string): ChangesRequest {
  return withFeedOptions(workerChangesFilter(kind, options.worker, options.instance), since, options.heartbeatMs, options.batchSize);
}

export function withFeedOptions(filter: ChangesRequest, since: string, heartbeatMs: number, batchSize = DEFAULT_BATCH_SIZE): ChangesRequest {
  return {
    ...filter,
    qs: { feed: 'longpoll', since, include_docs: true, limit: batchSize, heartbeat: heartbeatMs, ...filter.qs },
  };
}

/** The batch a changes response holds; a deletion comes as `{_id, _rev, _deleted: true}`. */
export function toBatch(body: ChangesBody, since: string): ChangeBatch {
  const docs = (body.results ?? []).map((row) => row.doc ?? { _id: row.id, ...(row.deleted ? { _deleted: true } : {}) });
  const lastSeq = body.last_seq === undefined || body.last_seq === null ? since : String(body.last_seq);
  return { docs, lastSeq };
}

/**
 * A few documents by id, on both servers: `_doc_ids` is a built-in filter (no couchjs on
 * CouchDB; pouchdb-server hands the ids to PouchDB's own `doc_ids` option), with the ids in the
 * body so that a long list never makes a long URL.
 */
export function docIdsChangesFilter(ids: readonly string[]): ChangesRequest {
  return { method: 'POST', qs: { filter: '_doc_ids' }, body: { doc_ids: [...ids] } };
}

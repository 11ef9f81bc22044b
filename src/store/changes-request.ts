/**
 * Which changes a feed asks `_changes` for, as each server supports it, and what an answer
 * holds. changes.ts makes the requests.
 */
import { BY_WORKER_FILTER } from './design';
import type { ChangeBatch, FeedOptions, ServerKind } from './types';
import type { TaskDoc } from '../types';

/** @see FeedOptions.batchSize */
export const DEFAULT_BATCH_SIZE = 1000;

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

/** The filter that asks for one worker's changes, as each server supports it. */
export function workerChangesFilter(kind: ServerKind, worker: string): ChangesRequest {
  if (kind === 'pouchdb-server') {
    // `filter=_selector` crashes pouchdb-server 4.2: use the design-document filter there.
    return { method: 'GET', qs: { filter: BY_WORKER_FILTER, worker } };
  }
  // A deletion leaves a tombstone without `worker`; it must pass so a worker holding the
  // task learns it is gone.
  const selector = { $or: [{ worker }, { _deleted: true }] };
  return { method: 'POST', qs: { filter: '_selector' }, body: { selector } };
}

/** The request that asks for one worker's changes from `since`. */
export function changesRequest(kind: ServerKind, options: FeedOptions, since: string): ChangesRequest {
  return withFeedOptions(workerChangesFilter(kind, options.worker), since, options.heartbeatMs, options.batchSize);
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

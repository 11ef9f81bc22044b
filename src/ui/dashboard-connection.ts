/**
 * The dashboard's database connection: the worker's own connection (same URL, same
 * credentials, never an admin's unless the operator configured one for the worker too),
 * narrowed to the requests the page needs. Whatever a bug or a crafted request might make the
 * dashboard ask, the database only ever sees these:
 *
 * | request | for |
 * | --- | --- |
 * | `GET /<db>` | the feed's starting seq, how far an index lags |
 * | `GET /<db>/_changes` | the live feed |
 * | `GET /<db>/_design/after-<name>/_view/<view>` | counts, lists, job names, schedules: After's own indexes, read only |
 * | `GET /<db>/_all_docs?startkey=<prefix>&endkey=...` | search by id prefix (a prefix that does not start with `_`) |
 * | `GET /<db>/_local/after-counts` | the counts the embedded server keeps as tasks change |
 * | `POST /<db>/_find` | due tasks, failures, what waits for a task |
 * | `POST /<db>/_bulk_docs` | bulk actions: updates and deletions of existing task documents (each with its `_rev`) |
 * | `GET /<db>_control/_all_docs` | live instances, paused workers |
 * | `GET`, `PUT` and `DELETE /<db>_control/pause:<worker>` | the Pause and Resume buttons of a worker |
 * | `GET` and `PUT /<db>/<task id>` | a task's page and the actions (an id never starts with `_`) |
 * | `PUT` and `DELETE /<db>_control/request:<task id>:...` | an action a fast worker keeps winning against: asked of the worker |
 * | `GET /<db>_stats`, `/<db>_stats/_all_docs`, `/<db>_stats/_design/after-runs/_view/by_hour` | the charts |
 *
 * So no design or `_local` document is read or written, no `_all_docs` reaches a design
 * document, no task is created, no other database, no server-level endpoint; a task is deleted
 * only by the bulk action for finished tasks (`_bulk_docs` with `_deleted` and its `_rev`).
 */
import { AfterError } from '../errors';
import type { Connection, RequestOptions, Response } from '../store/connection';
import { PAUSE_PREFIX, REQUEST_PREFIX, controlDbName } from '../store/schema';
import { BY_HOUR_VIEW, statsDbName } from '../store/run-stats-db';
import { KEPT_COUNTS_PATH } from '../store/for-operators/task-counts';

/** Whether the dashboard may make this request on the tasks database `dbName`. */
export function dashboardMayRequest(dbName: string, request: Pick<RequestOptions, 'method' | 'path' | 'root' | 'db' | 'qs' | 'body' | 'bodyJson'>): boolean {
  const method = (request.method ?? 'GET').toUpperCase();
  const { path } = request;
  if (request.root) return false;
  if (request.db === statsDbName(dbName)) return method === 'GET' && (path === '' || path === '_all_docs' || path === BY_HOUR_VIEW);
  if (request.db !== undefined && request.db !== dbName) {
    if (request.db !== controlDbName(dbName)) return false;
    if (path.includes('/')) return false;
    if (path.startsWith(encodeURIComponent(PAUSE_PREFIX))) return method === 'GET' || method === 'PUT' || method === 'DELETE';
    if (method === 'GET') return path === '_all_docs';
    return (method === 'PUT' || method === 'DELETE') && path.startsWith(encodeURIComponent(REQUEST_PREFIX));
  }
  if (method === 'GET' && (path === '' || path === '_changes' || AFTER_VIEW.test(path))) return true;
  if (method === 'GET' && path === '_all_docs') return isIdPrefixRange(request.qs);
  if (method === 'GET' && path === KEPT_COUNTS_PATH) return true;
  if (method === 'POST' && path === '_find') return true;
  if (method === 'POST' && path === '_bulk_docs') return onlyExistingTasks(bodyOf(request));
  if (method === 'GET' || method === 'PUT') return isTaskPath(path);
  return false;
}

/** A view of one of After's design documents (`_design/after-<name>/_view/<view>`), never the document itself. */
const AFTER_VIEW = /^_design\/after-[a-z0-9-]+\/_view\/[a-z0-9_-]+$/;

/** `_all_docs` from a prefix that cannot reach `_design/` documents, to the end of that prefix. */
function isIdPrefixRange(qs: RequestOptions['qs']): boolean {
  const start = qs?.startkey;
  const end = qs?.endkey;
  return typeof start === 'string' && start !== '' && !start.startsWith('_') && typeof end === 'string' && end > start && !end.startsWith('_');
}

/** The body the request sends, whether given as a value or already serialised (bulk-docs.ts); undefined when unreadable. */
function bodyOf(request: Pick<RequestOptions, 'body' | 'bodyJson'>): unknown {
  if (request.bodyJson === undefined) return request.body;
  try {
    return JSON.parse(request.bodyJson) as unknown;
  } catch {
    return undefined;
  }
}

/** Every document of a `_bulk_docs` is an existing task's new revision (a `_rev`, no `_` id). */
function onlyExistingTasks(body: unknown): boolean {
  const docs = (body as { docs?: unknown } | undefined)?.docs;
  if (!Array.isArray(docs) || docs.length === 0) return false;
  return docs.every((doc) => {
    const d = doc as { _id?: unknown; _rev?: unknown } | null;
    return typeof d?._id === 'string' && d._id !== '' && !d._id.startsWith('_') && typeof d._rev === 'string';
  });
}

/** One encoded path segment naming a document whose id does not start with `_` (and is no dot segment, which URL handling resolves away). */
function isTaskPath(path: string): boolean {
  if (path === '' || path.includes('/')) return false;
  let id: string;
  try {
    id = decodeURIComponent(path);
  } catch {
    return false;
  }
  return id !== '' && id !== '.' && id !== '..' && !id.startsWith('_') && encodeURIComponent(id) === path;
}

export function dashboardConnection(conn: Connection): Connection {
  return {
    dbName: conn.dbName,
    displayUrl: conn.displayUrl,
    clock: conn.clock,
    request<T>(options: RequestOptions): Promise<Response<T>> {
      if (!dashboardMayRequest(conn.dbName, options)) {
        return Promise.reject(new AfterError('E_FORBIDDEN', `the dashboard does not make this request: ${(options.method ?? 'GET').toUpperCase()} ${options.root ? '/' : `/${options.db ?? conn.dbName}/`}${options.path}`));
      }
      return conn.request<T>(options);
    },
    close: () => conn.close(),
  };
}

/**
 * The dashboard's database connection: the worker's own connection (same URL, same
 * credentials, never an admin's unless the operator configured one for the worker too),
 * narrowed to the requests the page needs. Whatever a bug or a crafted request might make the
 * dashboard ask, the database only ever sees these:
 *
 * | request | for |
 * | --- | --- |
 * | `GET /<db>` | the feed's starting seq |
 * | `GET /<db>/_changes` | the live feed |
 * | `POST /<db>/_find` | due tasks and failures |
 * | `GET /<db>/_design/after-stats/_view/by_worker_status` | counts |
 * | `GET /<db>_control/_all_docs` | live instances, paused workers |
 * | `GET`, `PUT` and `DELETE /<db>_control/pause:<worker>` | the Pause and Resume buttons of a worker |
 * | `GET` and `PUT /<db>/<task id>` | a task's page and the actions (an id never starts with `_`) |
 * | `PUT` and `DELETE /<db>_control/request:<task id>:...` | an action a fast worker keeps winning against: asked of the worker |
 *
 * So no design or `_local` document, no `_all_docs` of the tasks, no other database, no
 * server-level endpoint, and no delete of a task.
 */
import { AfterError } from '../errors';
import type { Connection, RequestOptions, Response } from '../store/connection';
import { PAUSE_PREFIX, REQUEST_PREFIX, controlDbName } from '../store/schema';
import { BY_WORKER_STATUS_VIEW } from '../store/schema';

/** Whether the dashboard may make this request on the tasks database `dbName`. */
export function dashboardMayRequest(dbName: string, request: Pick<RequestOptions, 'method' | 'path' | 'root' | 'db'>): boolean {
  const method = (request.method ?? 'GET').toUpperCase();
  const { path } = request;
  if (request.root) return false;
  if (request.db !== undefined && request.db !== dbName) {
    if (request.db !== controlDbName(dbName)) return false;
    if (path.includes('/')) return false;
    if (path.startsWith(encodeURIComponent(PAUSE_PREFIX))) return method === 'GET' || method === 'PUT' || method === 'DELETE';
    if (method === 'GET') return path === '_all_docs';
    return (method === 'PUT' || method === 'DELETE') && path.startsWith(encodeURIComponent(REQUEST_PREFIX));
  }
  if (method === 'GET' && (path === '' || path === '_changes' || path === BY_WORKER_STATUS_VIEW)) return true;
  if (method === 'POST' && path === '_find') return true;
  if (method === 'GET' || method === 'PUT') return isTaskPath(path);
  return false;
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

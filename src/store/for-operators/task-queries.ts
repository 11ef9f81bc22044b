/**
 * Reading many tasks at once, for `after task list`, `after status`, the library API and the
 * dashboard: lists through the Mango indexes `after init` creates, counts from the
 * `by_worker_status` view. A missing index or view is E_NOT_INITIALIZED ("run 'after init'").
 */
import { AfterError, CouchRequestError } from '../../errors';
import { revGeneration } from '../../revision';
import { STATUSES, type TaskDoc } from '../../types';
import type { Connection } from '../connection';
import { readStatusCounts, serverKindOf, type StatusCount } from './task-counts';
import { STATUS_DATE, WORKER_STATUS_DATE, useIndex, type MangoIndex } from '../schema';
import { isMissingDatabase } from '../request-errors';

export interface TaskFilter {
  worker?: string;
  status?: string;
  /** Earliest `date`, compared with the stored string (ISO 8601 sorts as text). */
  from?: string;
  /** Latest `date`, inclusive, compared the same way. */
  to?: string;
  /** @default 100 */
  limit?: number;
}

export type { StatusCount } from './task-counts';

/** What a task waiting for another (`after`) needs to know of it. */
export interface DependencyState {
  id: string;
  /** The dependency's status (`waiting` when it has none), or null when it does not exist. */
  status: string | null;
  /** It has a `repeat` (so it is never done until its series ends: the waiting task goes to error). */
  repeats: boolean;
}

const DEFAULT_LIST_LIMIT = 100;

/**
 * Tasks sorted by `date`: one `_find` per status (an index sorts by its fields in order, so
 * status comes before date), merged by date. Tasks without a `date` are in no index and are
 * not listed.
 */
export async function listTasks(conn: Connection, filter: TaskFilter = {}): Promise<TaskDoc[]> {
  const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
  const statuses = filter.status !== undefined ? [filter.status] : [...STATUSES];
  const pages = await Promise.all(statuses.map((status) => findByStatus(conn, { ...filter, status, limit })));
  // A task whose status changed while the statuses were read (cancel, then canceled) is found
  // under both: it is listed once, as its later revision.
  const latest = new Map<string, TaskDoc>();
  for (const doc of pages.flat()) {
    const seen = latest.get(doc._id);
    if (!seen || revGeneration(doc._rev) > revGeneration(seen._rev)) latest.set(doc._id, doc);
  }
  return [...latest.values()]
    .sort((a, b) => compareDates(a.date, b.date) || a._id.localeCompare(b._id))
    .slice(0, limit);
}

async function findByStatus(conn: Connection, filter: TaskFilter & { status: string; limit: number }): Promise<TaskDoc[]> {
  const date: Record<string, string | null> = filter.from !== undefined ? { $gte: filter.from } : { $gt: null };
  if (filter.to !== undefined) date.$lte = filter.to;
  const index: MangoIndex = filter.worker !== undefined ? WORKER_STATUS_DATE : STATUS_DATE;
  const selector: Record<string, unknown> = filter.worker !== undefined
    ? { worker: filter.worker, status: filter.status, date }
    : { status: filter.status, date };
  return find(conn, { selector, sort: index.fields.map((field) => ({ [field]: 'asc' })), limit: filter.limit, use_index: useIndex(index) });
}

/** Tasks in `error`, latest date first (the [status, date] index read backwards). */
export function listRecentFailures(conn: Connection, limit: number): Promise<TaskDoc[]> {
  return find(conn, {
    selector: { status: 'error', date: { $gt: null } },
    sort: STATUS_DATE.fields.map((field) => ({ [field]: 'desc' })),
    limit,
    use_index: useIndex(STATUS_DATE),
  });
}

/**
 * The status of each task named in `ids`, in the order named (null: it does not exist). One
 * `_find` on `_id` (CouchDB's built-in primary index), never `_all_docs`: the dashboard, which
 * shows what a task waits for, may not read `_all_docs` (ui/dashboard-connection.ts).
 */
export async function readDependencyStates(conn: Connection, ids: readonly string[]): Promise<DependencyState[]> {
  if (ids.length === 0) return [];
  const res = await conn.request<{ docs?: TaskDoc[] }>({
    method: 'POST',
    path: '_find',
    body: { selector: { _id: { $in: ids } }, fields: ['_id', 'status', 'repeat'], limit: ids.length },
  });
  const found = new Map<string, TaskDoc>();
  for (const dep of res.body.docs ?? []) if (typeof dep._id === 'string') found.set(dep._id, dep);
  return ids.map((id) => {
    const dep = found.get(id);
    if (!dep) return { id, status: null, repeats: false };
    return { id, status: typeof dep.status === 'string' ? dep.status : 'waiting', repeats: dep.repeat !== undefined && dep.repeat !== null };
  });
}

/** Task counts by worker and status, from an index kept up to date beside the tasks (task-counts.ts). */
export async function statusCounts(conn: Connection): Promise<StatusCount[]> {
  return readStatusCounts({ conn, kind: await serverKindOf(conn) });
}

/** One `_find` through an index `after init` creates. */
async function find(conn: Connection, body: Record<string, unknown>): Promise<TaskDoc[]> {
  try {
    return (await conn.request<{ docs: TaskDoc[] }>({ method: 'POST', path: '_find', body })).body.docs;
  } catch (err) {
    throw notInitialized(err);
  }
}

/** A missing index or design document means `after init` has not run on this database. */
function notInitialized(err: unknown): unknown {
  if (!(err instanceof CouchRequestError) || isMissingDatabase(err)) return err;
  const missingView = err.status === 404;
  const missingIndex = err.status === 400 && /no_usable_index|index/i.test(`${err.reason ?? ''} ${err.message}`);
  if (missingView || missingIndex) {
    return new AfterError('E_NOT_INITIALIZED', `the database has no After indexes or design document; run 'after init'`, { cause: err });
  }
  return err;
}

function compareDates(a: unknown, b: unknown): number {
  const left = typeof a === 'string' ? a : '';
  const right = typeof b === 'string' ? b : '';
  return left < right ? -1 : left > right ? 1 : 0;
}

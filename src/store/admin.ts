/**
 * Task operations for the CLI (`after task ...`, `after status`) and the library API: the
 * same plain HTTP requests a user could make with curl, each failing fast with a one-line error.
 */
import { randomBytes } from 'node:crypto';
import { AfterError, CouchRequestError } from '../errors';
import { STATUSES, type TaskDoc } from '../types';
import type { Connection } from './connection';
import { REQUEST_PREFIX, controlDbName, type RequestAction } from './control';
import { BY_WORKER_STATUS_VIEW, STATUS_DATE, WORKER_STATUS_DATE, useIndex, type MangoIndex } from './design';

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

export interface StatusCount {
  worker: string;
  status: string;
  count: number;
}

/** Writes retried when someone else changed the task between our read and our write. */
const UPDATE_TRIES = 5;
/**
 * Direct writes tried before asking the task's worker to make the change: a task that repeats
 * every few milliseconds is rewritten by its worker faster than a read-then-write can win.
 */
const DIRECT_TRIES = 3;
/** How long a request to a worker may take to show in the task. */
const REQUEST_WAIT_MS = 10_000;
const REQUEST_POLL_MS = 50;

/**
 * What a change means, for when direct writes keep losing to the worker: the request the task's
 * worker carries out instead (SPEC §3 "a user's write always wins"), and how to see it done.
 */
export interface TaskIntent {
  action: RequestAction;
  /** reschedule: the new date, as written. */
  date?: string;
  /** The task (null: deleted) shows the change. */
  done(doc: TaskDoc | null): boolean;
}

export const CANCEL_INTENT: TaskIntent = { action: 'cancel', done: (doc) => doc === null || ['cancel', 'canceled', 'done', 'error'].includes(String(doc.status)) };
export const PAUSE_INTENT: TaskIntent = { action: 'pause', done: (doc) => doc === null || ['paused', 'done', 'error', 'canceled'].includes(String(doc.status)) };
export const DELETE_INTENT: TaskIntent = { action: 'delete', done: (doc) => doc === null };
export function rescheduleIntent(date: string): TaskIntent {
  return { action: 'reschedule', date, done: (doc) => doc === null || doc.date === date };
}
const DEFAULT_LIST_LIMIT = 100;

/** Create a task; with an `_id`, a second create is E_TASK_EXISTS and nothing is overwritten. */
export async function createTask(conn: Connection, doc: Record<string, unknown>): Promise<{ id: string; rev: string }> {
  const body = { ...doc, status: doc.status ?? 'waiting' };
  const id = typeof doc._id === 'string' ? doc._id : undefined;
  try {
    const res = id === undefined
      ? await conn.request<{ id: string; rev: string }>({ method: 'POST', path: '', body })
      : await conn.request<{ id: string; rev: string }>({ method: 'PUT', path: docPath(id), body });
    return { id: res.body.id, rev: res.body.rev };
  } catch (err) {
    if (id !== undefined && err instanceof CouchRequestError && err.status === 409) {
      throw new AfterError('E_TASK_EXISTS', `task ${id} already exists`, { cause: err });
    }
    throw err;
  }
}

/** The task, or E_TASK_NOT_FOUND (a deleted task is not found either). */
export async function getTask(conn: Connection, id: string): Promise<TaskDoc> {
  try {
    return (await conn.request<TaskDoc>({ path: docPath(id) })).body;
  } catch (err) {
    throw taskNotFound(err, id);
  }
}

/**
 * Tasks sorted by `date`, through the Mango indexes `after init` creates: one `_find` per
 * status (an index sorts by its fields in order, so status comes before date), merged by date.
 * Tasks without a `date` are in no index and are not listed.
 */
export async function listTasks(conn: Connection, filter: TaskFilter = {}): Promise<TaskDoc[]> {
  const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
  const statuses = filter.status !== undefined ? [filter.status] : [...STATUSES];
  const pages = await Promise.all(statuses.map((status) => findByStatus(conn, { ...filter, status, limit })));
  return pages
    .flat()
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
  try {
    const res = await conn.request<{ docs: TaskDoc[] }>({
      method: 'POST',
      path: '_find',
      body: { selector, sort: index.fields.map((field) => ({ [field]: 'asc' })), limit: filter.limit, use_index: useIndex(index) },
    });
    return res.body.docs;
  } catch (err) {
    throw notInitialized(err);
  }
}

/**
 * Read, apply `mutate`, write with the read `_rev`; a 409 means someone else wrote first, so
 * read again and apply again. `mutate` returning null leaves the task as it is.
 */
export async function updateTask(
  conn: Connection,
  id: string,
  mutate: (doc: TaskDoc) => TaskDoc | null | Promise<TaskDoc | null>,
  intent?: TaskIntent,
): Promise<TaskDoc> {
  for (let attempt = 1; ; attempt++) {
    const current = await getTask(conn, id);
    const next = await mutate(JSON.parse(JSON.stringify(current)) as TaskDoc);
    if (next === null) return current;
    if (intent && attempt > DIRECT_TRIES) {
      const result = await askWorker(conn, current, intent);
      if (result === null) throw new AfterError('E_TASK_NOT_FOUND', `task ${id} not found`);
      return result;
    }
    try {
      const res = await conn.request<{ rev: string }>({
        method: 'PUT',
        path: docPath(id),
        body: { ...next, _id: id, _rev: current._rev },
      });
      return { ...next, _id: id, _rev: res.body.rev };
    } catch (err) {
      if (!(err instanceof CouchRequestError && err.status === 409)) throw err;
      if (attempt >= UPDATE_TRIES) {
        throw new AfterError('E_CONFLICT', `task ${id} kept changing under us; gave up after ${UPDATE_TRIES} tries`, { cause: err });
      }
    }
  }
}

/** Delete a task (a tombstone a worker sees in `_changes` and drops from memory). */
export async function deleteTask(conn: Connection, id: string): Promise<{ id: string; rev: string }> {
  for (let attempt = 1; ; attempt++) {
    const current = await getTask(conn, id);
    if (attempt > DIRECT_TRIES) {
      await askWorker(conn, current, DELETE_INTENT);
      return { id, rev: '' };
    }
    try {
      const res = await conn.request<{ rev: string }>({ method: 'DELETE', path: docPath(id), qs: { rev: String(current._rev) } });
      return { id, rev: res.body.rev };
    } catch (err) {
      if (!(err instanceof CouchRequestError && err.status === 409) || attempt >= UPDATE_TRIES) throw err;
    }
  }
}

/**
 * Ask the worker holding `task` to make the change (a `request:` document in the control
 * database, which the holder carries out with its own writes) and wait until the task shows it.
 */
async function askWorker(conn: Connection, task: TaskDoc, intent: TaskIntent): Promise<TaskDoc | null> {
  const db = controlDbName(conn.dbName);
  const requestId = `${REQUEST_PREFIX}${task._id}:${randomBytes(4).toString('hex')}`;
  const body = {
    type: 'request',
    worker: task.worker,
    task: task._id,
    action: intent.action,
    ...(intent.date !== undefined ? { date: intent.date } : {}),
    requested_at: new Date(conn.clock.dbNow()).toISOString(),
  };
  const posted = await conn.request<{ rev: string }>({ method: 'PUT', db, path: encodeURIComponent(requestId), body });
  const deadline = Date.now() + REQUEST_WAIT_MS;
  for (;;) {
    let doc: TaskDoc | null;
    try {
      doc = await getTask(conn, task._id);
    } catch (err) {
      if (!(err instanceof AfterError && err.code === 'E_TASK_NOT_FOUND')) throw err;
      doc = null;
    }
    if (intent.done(doc)) return doc;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, REQUEST_POLL_MS));
  }
  await conn.request({ method: 'DELETE', db, path: encodeURIComponent(requestId), qs: { rev: posted.body.rev } }).catch(() => undefined);
  throw new AfterError(
    'E_CONFLICT',
    `task ${task._id} kept changing under us, and no live instance of worker ${String(task.worker)} took the ${intent.action} request within ${REQUEST_WAIT_MS / 1000} s`,
  );
}

/** Task counts by worker and status, from the `by_worker_status` view (`_count` reduce). */
export async function statusCounts(conn: Connection): Promise<StatusCount[]> {
  try {
    const res = await conn.request<{ rows: Array<{ key: [string, unknown]; value: number }> }>({
      path: BY_WORKER_STATUS_VIEW,
      qs: { group: true },
    });
    return res.body.rows.map((row) => ({
      worker: row.key[0],
      status: typeof row.key[1] === 'string' ? row.key[1] : String(row.key[1] ?? '(none)'),
      count: row.value,
    }));
  } catch (err) {
    throw notInitialized(err);
  }
}

/** `_design/...` ids keep their slash (CouchDB routes on it); any other id is one path segment. */
function docPath(id: string): string {
  return id.startsWith('_design/') ? `_design/${encodeURIComponent(id.slice('_design/'.length))}` : encodeURIComponent(id);
}

function taskNotFound(err: unknown, id: string): unknown {
  if (err instanceof CouchRequestError && err.status === 404 && !isMissingDatabase(err)) {
    return new AfterError('E_TASK_NOT_FOUND', `task ${id} not found`, { cause: err });
  }
  return err;
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

function isMissingDatabase(err: CouchRequestError): boolean {
  return err.code === 'E_DB_MISSING' || /database does not exist/i.test(err.reason ?? '');
}

function compareDates(a: unknown, b: unknown): number {
  const left = typeof a === 'string' ? a : '';
  const right = typeof b === 'string' ? b : '';
  return left < right ? -1 : left > right ? 1 : 0;
}

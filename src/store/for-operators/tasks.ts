/**
 * Task documents as the CLI (`after task ...`), the library API and the dashboard create, read,
 * change and delete them: the same plain HTTP requests a user could make with curl, each
 * failing fast with a one-line error. A change that keeps losing to a fast worker becomes a
 * request document the worker carries out itself (docs/spec.md §3 "a user's write always wins").
 * The queries (lists, counts) are in task-queries.ts.
 */
import { randomBytes } from 'node:crypto';
import { delay } from '../../clock';
import { AfterError } from '../../errors';
import type { TaskDoc } from '../../types';
import { docPath, withRetry, type Connection } from '../connection';
import { REQUEST_PREFIX, controlDbName, type RequestAction } from '../schema';
import { isConflict, isDocNotFound } from '../request-errors';

/** Writes tried when someone else changed the task between our read and our write. */
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
 * worker carries out instead, and how to see it done.
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

/**
 * `id`, when a request can name it in a URL path. `.` and `..` cannot: URL handling resolves
 * them away before the request leaves (WHATWG URL, whatever the percent-encoding: `%2E%2E` is
 * `..` too), so `GET /tasks/..` would read the server's welcome, and `DELETE` would aim at the
 * database itself. The dashboard refuses them the same way (ui/dashboard-data.ts).
 */
export function addressableTaskId(id: string): string {
  if (id === '.' || id === '..') {
    throw new AfterError('E_RESERVED_ID', `task id ${JSON.stringify(id)} cannot be used: a URL resolves "." and ".." away (/tasks/.. is the server itself)`);
  }
  return id;
}

/** Create a task; with an `_id`, a second create is E_TASK_EXISTS and nothing is overwritten. */
export async function createTask(conn: Connection, doc: Record<string, unknown>): Promise<{ id: string; rev: string }> {
  const body = { ...doc, status: doc.status ?? 'waiting' };
  const id = typeof doc._id === 'string' ? addressableTaskId(doc._id) : undefined;
  try {
    const res = id === undefined
      ? await conn.request<{ id: string; rev: string }>({ method: 'POST', path: '', body })
      : await conn.request<{ id: string; rev: string }>({ method: 'PUT', path: docPath(id), body });
    return { id: res.body.id, rev: res.body.rev };
  } catch (err) {
    if (id !== undefined && isConflict(err)) throw new AfterError('E_TASK_EXISTS', `task ${id} already exists`, { cause: err });
    throw err;
  }
}

/** The task, or E_TASK_NOT_FOUND (a deleted task is not found either). */
export async function getTask(conn: Connection, id: string): Promise<TaskDoc> {
  try {
    return (await conn.request<TaskDoc>({ path: docPath(addressableTaskId(id)) })).body;
  } catch (err) {
    if (isDocNotFound(err)) throw taskNotFound(id, err);
    throw err;
  }
}

/**
 * Read, apply `mutate`, write with the read `_rev`; a 409 means someone else wrote first, so
 * read again and apply again. `mutate` returning null leaves the task as it is. With an
 * `intent`, the tries after DIRECT_TRIES ask the task's worker instead.
 */
export async function updateTask(
  conn: Connection,
  id: string,
  mutate: (doc: TaskDoc) => TaskDoc | null | Promise<TaskDoc | null>,
  intent?: TaskIntent,
): Promise<TaskDoc> {
  try {
    return await withRetry(async (attempt) => {
      const current = await getTask(conn, id);
      const next = await mutate(JSON.parse(JSON.stringify(current)) as TaskDoc);
      if (next === null) return current;
      if (intent && attempt > DIRECT_TRIES) {
        const result = await askWorker(conn, current, intent);
        if (result === null) throw taskNotFound(id);
        return result;
      }
      const res = await conn.request<{ rev: string }>({ method: 'PUT', path: docPath(id), body: { ...next, _id: id, _rev: current._rev } });
      return { ...next, _id: id, _rev: res.body.rev };
    }, { retryOn: 'conflict', attempts: UPDATE_TRIES });
  } catch (err) {
    if (isConflict(err)) throw new AfterError('E_CONFLICT', `task ${id} kept changing under us; gave up after ${UPDATE_TRIES} tries`, { cause: err });
    throw err;
  }
}

/** Delete a task (a tombstone a worker sees in `_changes` and drops from memory). */
export function deleteTask(conn: Connection, id: string): Promise<{ id: string; rev: string }> {
  return withRetry(async (attempt) => {
    const current = await getTask(conn, id);
    if (attempt > DIRECT_TRIES) {
      await askWorker(conn, current, DELETE_INTENT);
      return { id, rev: '' };
    }
    const res = await conn.request<{ rev: string }>({ method: 'DELETE', path: docPath(id), qs: { rev: String(current._rev) } });
    return { id, rev: res.body.rev };
  }, { retryOn: 'conflict', attempts: UPDATE_TRIES });
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
  const posted = await conn.request<{ rev: string }>({ method: 'PUT', db, path: docPath(requestId), body });
  const deadline = Date.now() + REQUEST_WAIT_MS;
  for (;;) {
    const doc = await getTask(conn, task._id).catch((err: unknown) => {
      if (err instanceof AfterError && err.code === 'E_TASK_NOT_FOUND') return null;
      throw err;
    });
    if (intent.done(doc)) return doc;
    if (Date.now() > deadline) break;
    await delay(REQUEST_POLL_MS);
  }
  await conn.request({ method: 'DELETE', db, path: docPath(requestId), qs: { rev: posted.body.rev } }).catch(() => undefined);
  throw new AfterError(
    'E_CONFLICT',
    `task ${task._id} kept changing under us, and no live instance of worker ${String(task.worker)} took the ${intent.action} request within ${REQUEST_WAIT_MS / 1000} s`,
  );
}

function taskNotFound(id: string, cause?: unknown): AfterError {
  return new AfterError('E_TASK_NOT_FOUND', `task ${id} not found`, cause === undefined ? undefined : { cause });
}

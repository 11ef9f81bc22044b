/**
 * Tasks written and read over plain HTTP, as curl does it: what a user's own program would
 * send, so the tests go through the database's own rules and not through After's code.
 */
import { randomBytes } from 'node:crypto';
import type { TaskDoc } from '../../src/types';
import type { TestDb } from './db';
import { waitForStatus } from './wait';

/** An ISO date from epoch milliseconds: `iso(Date.now() + 2_000)`. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** POST one task; returns its id. A write the database refuses throws with its answer. */
export async function postTask(db: TestDb, task: Record<string, unknown>): Promise<string> {
  const res = await db.request<{ id: string }>('POST', '', task);
  if (res.status !== 201) throw new Error(`POST task: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  return res.body.id;
}

/**
 * Create tasks in one `_bulk_docs` (how a user would load many); returns their ids in the order
 * given. Each gets its `_id` here: pouchdb-server does not answer `_bulk_docs` in request order.
 * A busy cluster answers 202 (rows `accepted`: fewer copies than a quorum written yet), which
 * is still a create.
 */
export async function postTasks(db: TestDb, tasks: Array<Record<string, unknown>>): Promise<string[]> {
  const docs = tasks.map((task) => ({ _id: `task-${randomBytes(8).toString('hex')}`, ...task }));
  const res = await db.request<Array<{ id: string; ok?: boolean; error?: string }>>('POST', '_bulk_docs', { docs });
  if ((res.status !== 201 && res.status !== 202) || !Array.isArray(res.body) || res.body.some((row) => !row.ok)) {
    throw new Error(`_bulk_docs failed: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  }
  return docs.map((doc) => doc._id as string);
}

/** The task as stored now. */
export async function getTask(db: TestDb, id: string): Promise<TaskDoc> {
  const res = await db.request<TaskDoc>('GET', encodeURIComponent(id));
  if (res.status !== 200) throw new Error(`GET task ${id}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  return res.body;
}

/** A plain HTTP update: the document read, changed, written with its `_rev`; read again after a 409. */
export async function updateTask(db: TestDb, id: string, change: (doc: TaskDoc) => TaskDoc): Promise<void> {
  for (;;) {
    const res = await db.request('PUT', encodeURIComponent(id), change(await getTask(db, id)));
    if (res.status === 201) return;
    if (res.status !== 409) throw new Error(`PUT task ${id}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  }
}

/** Post a task due now (`date` may be given) and wait until its run ended, done or error. */
export async function runTask(db: TestDb, task: Record<string, unknown>, timeoutMs: number): Promise<TaskDoc> {
  const id = await postTask(db, { date: iso(Date.now()), ...task });
  return waitForStatus(db, id, ['done', 'error'], timeoutMs);
}

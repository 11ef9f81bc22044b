/**
 * What the dashboard shows and does, as plain database requests: counts from the
 * `by_worker_status` view, due tasks and failures from the Mango indexes `after init` creates,
 * live instances from their heartbeat documents, and actions that are ordinary document writes
 * with the current `_rev` (store/tasks.ts updateTask: a 409 re-reads and decides again).
 *
 * Only task documents are shown or acted on: an id starting with `_` (`_design/after`,
 * `_all_docs`, `_local/...`) is refused before any request, and a document that is not a task
 * is "not found", so the dashboard never becomes a way to read or write anything else.
 */
import { AfterError } from '../errors';
import type { Connection } from '../store/connection';
import { pauseTask, resumeTask, runTaskNow } from '../store/for-operators/task-actions';
import { readDependencyStates, type DependencyState } from '../store/for-operators/task-queries';
import { CANCEL_INTENT, getTask, rescheduleIntent, updateTask, type TaskIntent } from '../store/for-operators/tasks';
import { checkWorkerNameForPause, pauseWorker, resumeWorker, type PauseReport } from '../store/for-operators/worker-pause';
import { parseTaskDate } from '../task/dates';
import type { TaskDoc } from '../types';

/** One task as a list row shows it (never the whole document: it may be large). */
export interface TaskSummary {
  id: string;
  worker: string | null;
  status: string | null;
  date: string | null;
  job: string | null;
  error: string | null;
  finished_at: string | null;
  /** The tasks it waits for (`after`), when it names any. */
  after?: string[];
  deleted?: true;
}

/**
 * A task id the dashboard accepts: not empty and not starting with `_`, which CouchDB keeps
 * for its own documents and endpoints (a task can never have such an id).
 */
export function checkTaskId(id: string): string {
  if (id === '' || id.startsWith('_')) {
    throw new AfterError('E_RESERVED_ID', 'ids starting with "_" are CouchDB\'s own documents and endpoints, never tasks');
  }
  // As a path segment `.` and `..` are resolved away by URL handling (`/tasks/..` is `/`).
  if (id === '.' || id === '..') throw new AfterError('E_RESERVED_ID', `"${id}" cannot be addressed as a document id over HTTP`);
  return id;
}

/** A task document: `worker` is a string (docs/spec.md §2: required) and it names a job or a date. */
export function isTaskDoc(doc: unknown): doc is TaskDoc {
  if (typeof doc !== 'object' || doc === null) return false;
  const d = doc as Partial<TaskDoc>;
  return typeof d._id === 'string' && !d._id.startsWith('_') && typeof d.worker === 'string' && (d.job !== undefined || d.date !== undefined);
}

/** The task with this id, or E_TASK_NOT_FOUND when there is none or the document is not a task. */
export async function readTask(conn: Connection, id: string): Promise<TaskDoc> {
  const doc = await getTask(conn, checkTaskId(id));
  if (!isTaskDoc(doc)) throw notATask(id);
  return doc;
}

function notATask(id: string): AfterError {
  return new AfterError('E_TASK_NOT_FOUND', `task ${id} not found`);
}

export function summarize(doc: TaskDoc): TaskSummary {
  const summary: TaskSummary = {
    id: doc._id,
    worker: typeof doc.worker === 'string' ? doc.worker : null,
    status: typeof doc.status === 'string' ? doc.status : null,
    date: typeof doc.date === 'string' ? doc.date : null,
    job: jobName(doc.job),
    error: typeof doc.error?.message === 'string' ? doc.error.message : null,
    finished_at: typeof doc.last_run?.finished_at === 'string' ? doc.last_run.finished_at : null,
  };
  if (Array.isArray(doc.after) && doc.after.length > 0) summary.after = doc.after.filter((id): id is string => typeof id === 'string').slice(0, 20);
  if (doc._deleted) summary.deleted = true;
  return summary;
}

/** What task `id` waits for (`after`): each task it names with its status now, in the order named. */
export async function readDependencies(conn: Connection, id: string): Promise<DependencyState[]> {
  const doc = await readTask(conn, id);
  const ids = Array.isArray(doc.after) ? [...new Set(doc.after.filter((dep): dep is string => typeof dep === 'string' && dep !== '' && !dep.startsWith('_')))].slice(0, 100) : [];
  return readDependencyStates(conn, ids);
}

function jobName(job: unknown): string | null {
  if (typeof job === 'string') return job;
  if (typeof job === 'object' && job !== null && typeof (job as { name?: unknown }).name === 'string') return (job as { name: string }).name;
  return null;
}

export type TaskAction = 'cancel' | 'run-now' | 'retry' | 'reschedule' | 'pause' | 'resume';
export const TASK_ACTIONS: readonly TaskAction[] = ['cancel', 'run-now', 'retry', 'reschedule', 'pause', 'resume'];

export type WorkerAction = 'pause' | 'resume';
export const WORKER_ACTIONS: readonly WorkerAction[] = ['pause', 'resume'];

/** Pause or resume a worker name (its `pause:<worker>` document in the control database). */
export function applyWorkerAction(conn: Connection, worker: string, action: WorkerAction): Promise<PauseReport> {
  checkWorkerNameForPause(worker);
  return action === 'pause' ? pauseWorker(conn, worker, { by: 'dashboard' }) : resumeWorker(conn, worker);
}

const FINISHED = ['done', 'error', 'canceled'];

/**
 * Apply an action to the task as it is now. The check runs on the document read just before
 * the write, so a task that changed meanwhile (it finished, someone canceled it) is refused
 * with E_ACTION rather than overwritten.
 */
export async function applyAction(conn: Connection, id: string, action: TaskAction, date?: string): Promise<TaskDoc> {
  // Run now, pause and resume: the same writes as `after task run|pause|resume` (task-actions.ts),
  // on a document checked to be a task first.
  if (action === 'run-now' || action === 'pause' || action === 'resume') {
    await readTask(conn, id);
    return action === 'run-now' ? runTaskNow(conn, id) : action === 'pause' ? pauseTask(conn, id) : resumeTask(conn, id);
  }
  const parsedDate = action === 'reschedule' ? parseTaskDate(date) : undefined;
  const intent: TaskIntent | undefined =
    action === 'cancel' ? CANCEL_INTENT : parsedDate?.ok ? rescheduleIntent(new Date(parsedDate.ms).toISOString()) : undefined;
  return updateTask(conn, checkTaskId(id), (doc) => {
    if (!isTaskDoc(doc)) throw notATask(id);
    const status = typeof doc.status === 'string' ? doc.status : 'waiting';
    switch (action) {
      case 'cancel':
        if (FINISHED.includes(status) || status === 'cancel') refuse(id, `cannot be canceled: it is ${status}`);
        return { ...doc, status: 'cancel' };
      case 'retry':
        if (status !== 'error') refuse(id, `only a failed task can be retried; it is ${status}`);
        // A new series of attempts: the retries spent before the failure are given back.
        return { ...doc, status: 'waiting', retries: 0 };
      case 'reschedule': {
        const parsed = parseTaskDate(date);
        if (!parsed.ok) throw new AfterError('E_USAGE', `invalid date: ${parsed.message}`);
        if (status === 'running' || status === 'cancel') refuse(id, `cannot be rescheduled: it is ${status}`);
        // A finished task goes back to waiting (docs/spec.md §3); a pending one is moved with `reschedule`.
        return { ...doc, status: FINISHED.includes(status) ? 'waiting' : 'reschedule', date: new Date(parsed.ms).toISOString() };
      }
    }
  }, intent);
}

function refuse(id: string, why: string): never {
  throw new AfterError('E_ACTION', `task ${id} ${why}`);
}

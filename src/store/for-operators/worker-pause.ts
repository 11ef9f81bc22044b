/**
 * Pausing a worker name: one document, `pause:<worker>`, in the control database `<db>_control`
 * (created by `after init`). Every instance of that worker, on every machine, follows that
 * database and starts no new run while the document is there (worker/peers/control-link.ts); runs in
 * progress finish, held tasks keep their dates. Deleting it (or writing `"paused": false`)
 * resumes the worker; what came due meanwhile then runs by its misfire rule. The document is a
 * plain write any HTTP client can make:
 *
 *   curl -X PUT $COUCH/tasks_control/pause:billing -d '{"worker": "billing"}'
 *   curl -X DELETE "$COUCH/tasks_control/pause:billing?rev=1-..."
 *
 * `after pause|resume`, the library API and the dashboard use the functions below.
 */
import { AfterError, CouchRequestError, UsageError } from '../../errors';
import { docPath, withRetry, type Connection, type RequestOptions, type Response } from '../connection';
import { controlDbName, isPausing, pauseDocId } from '../schema';
import { BY_WORKER_STATUS_VIEW } from '../schema';
import { isDocNotFound, isMissingDatabase } from '../request-errors';

export interface PauseReport {
  worker: string;
  /** Whether the worker name is paused now. */
  paused: boolean;
  /** False when it already was as asked (nothing written). */
  changed: boolean;
  /** Tasks naming this worker exist (pausing a name no task has is allowed, and said). */
  hasTasks: boolean;
  /** When it was paused (ISO 8601, database clock), while paused. */
  pausedAt?: string;
}

/** Longest worker name, as task validation allows (validate.ts). */
const MAX_NAME_LENGTH = 200;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const WRITE_TRIES = 5;

/** A worker name as a task may carry it: a non-empty string of at most 200 printable characters. */
export function checkWorkerNameForPause(worker: unknown): string {
  if (typeof worker !== 'string' || worker === '' || worker.length > MAX_NAME_LENGTH || CONTROL_CHARACTER.test(worker)) {
    throw new UsageError(`invalid worker name ${JSON.stringify(worker)}: a worker name is 1-${MAX_NAME_LENGTH} characters, no control characters`);
  }
  return worker;
}

/** Pause `worker`: write `pause:<worker>` (unless it is paused already). */
export async function pauseWorker(conn: Connection, worker: string, options: { by?: string } = {}): Promise<PauseReport> {
  checkWorkerNameForPause(worker);
  const hasTasks = await workerHasTasks(conn, worker);
  return withRetry(async () => {
    const current = await readPause(conn, worker);
    if (current && isPausing(current)) {
      return { worker, paused: true, changed: false, hasTasks, ...pausedAt(current) };
    }
    const body = {
      type: 'pause',
      worker,
      paused: true,
      paused_at: new Date(conn.clock.dbNow()).toISOString(),
      ...(options.by !== undefined ? { paused_by: options.by } : {}),
      ...(current?._rev ? { _rev: current._rev } : {}),
    };
    await control(conn, { method: 'PUT', path: docPath(pauseDocId(worker)), body });
    return { worker, paused: true, changed: true, hasTasks, pausedAt: body.paused_at };
  }, { retryOn: 'conflict', attempts: WRITE_TRIES });
}

/** Resume `worker`: delete `pause:<worker>` (unless it is not paused). */
export async function resumeWorker(conn: Connection, worker: string): Promise<PauseReport> {
  checkWorkerNameForPause(worker);
  const hasTasks = await workerHasTasks(conn, worker);
  return withRetry(async () => {
    const current = await readPause(conn, worker);
    if (!current) return { worker, paused: false, changed: false, hasTasks };
    try {
      await control(conn, { method: 'DELETE', path: docPath(pauseDocId(worker)), qs: { rev: String(current._rev) } });
    } catch (err) {
      if (isDocNotFound(err)) return { worker, paused: false, changed: false, hasTasks };
      throw err;
    }
    return { worker, paused: false, changed: isPausing(current), hasTasks };
  }, { retryOn: 'conflict', attempts: WRITE_TRIES });
}

/** Tasks naming `worker` exist: one read of the `by_worker_status` view (`_count`). */
export async function workerHasTasks(conn: Connection, worker: string): Promise<boolean> {
  try {
    const res = await conn.request<{ rows: Array<{ value: number }> }>({
      path: BY_WORKER_STATUS_VIEW,
      // nano JSON-encodes startkey and endkey.
      qs: { startkey: [worker], endkey: [worker, {}], reduce: true },
    });
    return (res.body.rows[0]?.value ?? 0) > 0;
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404) {
      throw new AfterError('E_NOT_INITIALIZED', `the database has no After design document; run 'after init'`, { cause: err });
    }
    throw err;
  }
}

async function readPause(conn: Connection, worker: string): Promise<{ _id: string; _rev?: string; [field: string]: unknown } | null> {
  try {
    return (await control<{ _id: string; _rev?: string }>(conn, { path: docPath(pauseDocId(worker)) })).body;
  } catch (err) {
    if (isDocNotFound(err)) return null;
    throw err;
  }
}

/** A request to the control database; its absence means `after init` has not run. */
async function control<T>(conn: Connection, options: Omit<RequestOptions, 'db'>): Promise<Response<T>> {
  try {
    return await conn.request<T>({ ...options, db: controlDbName(conn.dbName) });
  } catch (err) {
    if (isMissingDatabase(err)) {
      throw new AfterError('E_NOT_INITIALIZED', `the control database ${controlDbName(conn.dbName)} does not exist; run 'after init'`, { cause: err });
    }
    throw err;
  }
}

function pausedAt(doc: Record<string, unknown>): { pausedAt?: string } {
  return typeof doc.paused_at === 'string' ? { pausedAt: doc.paused_at } : {};
}

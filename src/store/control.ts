/**
 * The control database `<tasks db>_control` over CouchDB or pouchdb-server: instance heartbeats,
 * paused worker names and users' requests about tasks (store/types.ts `ControlDoc`). It is
 * small (a few documents per instance and per paused worker), so it is read whole and followed
 * whole: no index, no filter, no design document.
 */
import type { Logger } from '../log';
import { OpenFeeds, followSource } from './changes';
import { docPath, withRetry, type Connection } from './connection';
import { isConflict, isDocNotFound } from './request-errors';
import type { ControlDoc, ControlFeedOptions, ControlStore, Feed, StoreHealth } from './types';

export const INSTANCE_PREFIX = 'instance:';
export const PAUSE_PREFIX = 'pause:';
export const REQUEST_PREFIX = 'request:';

/** How often an instance rewrites its document. @default 10000 */
export const DEFAULT_INSTANCE_HEARTBEAT_MS = 10_000;

export type RequestAction = 'cancel' | 'delete' | 'reschedule' | 'pause' | 'run-now';
export const REQUEST_ACTIONS: readonly RequestAction[] = ['cancel', 'delete', 'reschedule', 'pause', 'run-now'];

/** A user's request about one task, as the worker acts on it. */
export interface TaskRequest {
  id: string;
  rev: string;
  task: string;
  action: RequestAction;
  /** reschedule: the new date; run-now: when the run was asked for (the task's `run_now`). */
  date?: string;
}

/** One run in progress as a heartbeat document lists it (`running_now`). */
export interface RunNow {
  id: string;
  job: string;
  /** When it started, ISO 8601, database clock. */
  since: string;
}

/** An instance's heartbeat document (`instance:<worker>:<instance>`). */
export interface InstanceDoc {
  _id: string;
  _rev?: string;
  type: 'instance';
  worker: string;
  instance: string;
  host: string;
  pid: number;
  /** ISO 8601, database clock. */
  started_at: string;
  heartbeat_at: string;
  interval_ms: number;
  running: number;
  held: number;
  /** Due tasks waiting for a rate or concurrency limit (only when the worker name has limits). */
  throttled?: number;
  /** The runs in progress (at most 20, longest-running first), each since when (database clock). */
  running_now?: RunNow[];
}

export function instanceDocId(worker: string, instance: string): string {
  return `${INSTANCE_PREFIX}${worker}:${instance}`;
}

export function pauseDocId(worker: string): string {
  return `${PAUSE_PREFIX}${worker}`;
}

/** A pause document pauses its worker name until it is deleted or says `"paused": false`. */
export function isPausing(doc: ControlDoc | null | undefined): boolean {
  return !!doc && !doc._deleted && doc.paused !== false;
}

/** A request document of this worker's, or undefined (another worker's, or malformed). */
export function parseRequest(doc: ControlDoc, worker: string): TaskRequest | undefined {
  if (doc.worker !== worker || typeof doc.task !== 'string' || typeof doc._rev !== 'string') return undefined;
  const action = REQUEST_ACTIONS.find((name) => name === doc.action);
  if (!action) return undefined;
  const request: TaskRequest = { id: doc._id, rev: doc._rev, task: doc.task, action };
  if (typeof doc.date === 'string') request.date = doc.date;
  return request;
}

/** The control database of a tasks database. */
export function controlDbName(tasksDb: string): string {
  return `${tasksDb}_control`;
}

/** Few revisions kept: each heartbeat is one, and none is ever read. */
export const CONTROL_REVS_LIMIT = 10;

const FAIL_FAST_TRIES = 2;

export function openControlStore(conn: Connection, log: Logger, health: StoreHealth): ControlStore & { close(): Promise<void> } {
  const db = controlDbName(conn.dbName);
  const feeds = new OpenFeeds();
  const call = <T>(options: Parameters<Connection['request']>[0]) =>
    withRetry(() => conn.request<T>({ ...options, db }), { attempts: FAIL_FAST_TRIES });

  return {
    dbName: db,

    async snapshot() {
      const info = await call<{ update_seq: unknown }>({ path: '' });
      const all = await call<{ rows: Array<{ id: string; doc?: ControlDoc }> }>({ path: '_all_docs', qs: { include_docs: true } });
      const docs = (all.body.rows ?? []).flatMap((row) => (row.doc && !row.id.startsWith('_design/') ? [row.doc] : []));
      return { docs, seq: String(info.body.update_seq) };
    },

    follow(options: ControlFeedOptions): Feed {
      return feeds.add(
        followSource(
          conn,
          {
            db,
            label: `changes feed of ${db}`,
            filter: { method: 'GET', qs: {} },
            since: options.since,
            heartbeatMs: options.heartbeatMs,
            onBatch: (batch) => options.onBatch({ docs: batch.docs.filter((doc) => !doc._id.startsWith('_design/')), lastSeq: batch.lastSeq }),
            onReconnect: options.onReconnect,
          },
          log,
          health,
        ),
      );
    },

    async put(doc) {
      try {
        const res = await call<{ rev: string }>({ method: 'PUT', path: docPath(doc._id), body: doc });
        return { ok: true, rev: res.body.rev };
      } catch (err) {
        if (isConflict(err)) return { ok: false, conflict: true };
        throw err;
      }
    },

    async remove(id, rev) {
      try {
        await call({ method: 'DELETE', path: docPath(id), qs: { rev } });
        return true;
      } catch (err) {
        if (isConflict(err) || isDocNotFound(err)) return false;
        throw err;
      }
    },

    async get(id) {
      try {
        const res = await call<ControlDoc>({ path: docPath(id) });
        return res.body._deleted ? null : res.body;
      } catch (err) {
        if (isDocNotFound(err)) return null;
        throw err;
      }
    },

    close: () => feeds.stopAll(),
  };
}

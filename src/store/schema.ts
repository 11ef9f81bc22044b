/**
 * The names and shapes After gives the database, shared by every part that talks to it: the
 * design documents and what is in them (a filter, views), the Mango indexes queries name, the
 * revision limits, and the control database beside the tasks database with its documents
 * (instance heartbeats, paused worker names, users' requests). `after init` (for-operators/
 * init.ts) creates what is named here; the worker's store and the operators' commands use it.
 * The bottom of store/: it imports no other part of it.
 */
import { STATUSES } from '../types';
import type { ControlDoc, ServerInfo } from './types';

// ── The tasks database ───────────────────────────────────────────────────────────────────

/** A Mango index After's queries name in `use_index` (always as [ddoc, name]). */
export interface MangoIndex {
  ddoc: string;
  name: string;
  fields: readonly string[];
}

/** Due tasks of a worker by date (findByStatus). */
export const WORKER_STATUS_DATE: MangoIndex = { ddoc: 'after-worker-status-date', name: 'worker-status-date', fields: ['worker', 'status', 'date'] };
/** Runs whose lease has expired (findExpiredLeases). */
export const WORKER_STATUS_LEASE: MangoIndex = { ddoc: 'after-worker-status-lease', name: 'worker-status-lease', fields: ['worker', 'status', 'lease.expires_at'] };
/** Tasks of any worker by status and date (listing, purge). */
export const STATUS_DATE: MangoIndex = { ddoc: 'after-status-date', name: 'status-date', fields: ['status', 'date'] };

/**
 * Tasks no other index reaches (findUnreachable, CouchDB only): Mango indexes skip a document
 * missing an indexed field and order an object or array after every string, so a task with no
 * `status` (which means "waiting"), an unknown one, an active one with no string `date`, or a
 * `running` one without a lease is found by no date or lease query. Nor, in time, is a task a
 * user asked to run now (`run_now`) whose `date` is later than the window. A partial index holds
 * just those; the worker gives each one a status, a verdict or its run, so it stays small.
 */
export const UNREACHABLE: MangoIndex & { partial: Record<string, unknown> } = {
  ddoc: 'after-unreachable',
  name: 'unreachable',
  fields: ['worker'],
  partial: unreachableSelector(),
};

/** The indexes every server gets. */
export const MANGO_INDEXES: readonly MangoIndex[] = [WORKER_STATUS_DATE, WORKER_STATUS_LEASE, STATUS_DATE];

/** The indexes of a server: the partial one where Mango honours it (CouchDB). */
export function mangoIndexesFor(kind: ServerInfo['kind']): readonly MangoIndex[] {
  return kind === 'couchdb' ? [...MANGO_INDEXES, UNREACHABLE] : MANGO_INDEXES;
}

function unreachableSelector(): Record<string, unknown> {
  const dated = ['waiting', 'scheduled', 'reschedule', 'cancel'];
  return {
    $or: [
      { status: { $exists: false } },
      { status: { $nin: [...STATUSES] } },
      { status: { $in: dated }, date: { $exists: false } },
      { status: { $in: dated }, date: { $not: { $regex: '^\\d{4}-\\d{2}-\\d{2}' } } },
      { status: 'running', 'lease.expires_at': { $exists: false } },
      { status: 'running', 'lease.expires_at': { $not: { $type: 'string' } } },
      { status: { $in: ['waiting', 'scheduled', 'reschedule'] }, run_now: { $type: 'string' } },
    ],
  };
}

/** `use_index` value for an index: CouchDB and pouchdb-server both take ["<ddoc>", "<name>"]. */
export function useIndex(index: MangoIndex): [string, string] {
  return [index.ddoc, index.name];
}

/** pouchdb-server's design document: the worker feed's filter and the malformed-task view. */
export const DESIGN_DOC_ID = '_design/after';
/** `_changes?filter=after/by_worker&worker=<name>`: pouchdb-server crashes on `_selector` feeds. */
export const BY_WORKER_FILTER = 'after/by_worker';
/** `_design/after/_view/unreachable_by_worker?key="<worker>"`: malformed tasks no index reaches (pouchdb-server). */
export const UNREACHABLE_BY_WORKER_VIEW = '_design/after/_view/unreachable_by_worker';
/** Task counts by worker and status (older readers; After reads for-operators/task-counts.ts); no worker query touches it. */
export const STATS_DOC_ID = '_design/after-stats';
/** `_design/after-stats/_view/by_worker_status?group=true`: task counts by [worker, status]. */
export const BY_WORKER_STATUS_VIEW = '_design/after-stats/_view/by_worker_status';
/** The opt-in validator (`after init --validate`). */
export const VALIDATE_DOC_ID = '_design/after-validate';

/** Few revisions kept per document: a task is rewritten on every run, its old bodies are of no use. */
export const REVS_LIMIT = 20;

// ── The control database: `<tasks db>_control` ───────────────────────────────────────────

export const INSTANCE_PREFIX = 'instance:';
export const PAUSE_PREFIX = 'pause:';
export const REQUEST_PREFIX = 'request:';

/** How often an instance rewrites its document. @default 10000 */
export const DEFAULT_INSTANCE_HEARTBEAT_MS = 10_000;
/** An instance silent for this many of its intervals is gone (a crash, a kill -9, a partition). */
export const STALE_AFTER_BEATS = 3;
/**
 * How far ahead of a reader's clock a heartbeat may be dated and still count. Instances date
 * their heartbeats by the database's clock, which each estimates within about a second
 * (docs/spec.md §7: a worker warns past 1 s), so a date further ahead is a clock far off or a forgery.
 */
export const HEARTBEAT_FUTURE_TOLERANCE_MS = 5_000;
/** The longest interval a heartbeat document is believed to keep (After writes every 10 s). */
export const MAX_HEARTBEAT_INTERVAL_MS = 60_000;

/** Whether a heartbeat dated `heartbeatMs` claims a time too far ahead of `nowMs` to be believed. */
export function isFutureHeartbeat(heartbeatMs: number, nowMs: number): boolean {
  return heartbeatMs > nowMs + HEARTBEAT_FUTURE_TOLERANCE_MS;
}

/** The interval a document claims, as believed: positive, at most MAX_HEARTBEAT_INTERVAL_MS. */
export function believedIntervalMs(claimedMs: number, fallbackMs: number): number {
  const interval = Number.isFinite(claimedMs) && claimedMs > 0 ? claimedMs : fallbackMs;
  return Math.min(interval, MAX_HEARTBEAT_INTERVAL_MS);
}

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

/** Runs listed in a heartbeat (`running_now`) at most: the document is rewritten every 10 s. */
export const RUNNING_NOW_LIMIT = 20;

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

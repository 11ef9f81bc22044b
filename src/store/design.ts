/**
 * `after init`: the tasks database, its Mango indexes, the `_design/after` document (its
 * `_changes` filter, task-count view and the validate_doc_update that refuses invalid tasks)
 * and the `<db>_instances` database of worker heartbeats (metrics/instance-heartbeat.ts).
 * Idempotent: a second run writes nothing (no new revision anywhere) and says "unchanged".
 */
import type { AfterConfig } from '../config';
import { CouchRequestError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { ensureInstancesDb, instancesDbName } from '../metrics/instance-heartbeat';
import { detectServer, openConnection, type Connection } from './connection';
import type { ServerInfo } from './types';
import { VALIDATE_DOC_UPDATE_SOURCE } from './validate-doc';

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

export const MANGO_INDEXES: readonly MangoIndex[] = [WORKER_STATUS_DATE, WORKER_STATUS_LEASE, STATUS_DATE];

/** `use_index` value for an index: CouchDB and pouchdb-server both take ["<ddoc>", "<name>"]. */
export function useIndex(index: MangoIndex): [string, string] {
  return [index.ddoc, index.name];
}

export const DESIGN_DOC_ID = '_design/after';
/** `_changes?filter=after/by_worker&worker=<name>`: pouchdb-server crashes on `_selector` feeds. */
export const BY_WORKER_FILTER = 'after/by_worker';
/** `_design/after/_view/unreachable_by_worker?key="<worker>"`: malformed tasks no index reaches. */
export const UNREACHABLE_BY_WORKER_VIEW = '_design/after/_view/unreachable_by_worker';
/** `_design/after/_view/by_worker_status?group=true`: task counts by [worker, status]. */
export const BY_WORKER_STATUS_VIEW = '_design/after/_view/by_worker_status';

/**
 * Deletions pass the filter so a worker drops a deleted task from memory. The
 * validate_doc_update refuses clearly invalid task documents at write time (validate-doc.ts).
 */
const DESIGN_DOC_BODY = {
  language: 'javascript',
  validate_doc_update: VALIDATE_DOC_UPDATE_SOURCE,
  filters: {
    by_worker: 'function (doc, req) { return doc._deleted === true || doc.worker === req.query.worker; }',
  },
  views: {
    by_worker_status: {
      map: "function (doc) { if (typeof doc.worker === 'string') { emit([doc.worker, doc.status], null); } }",
      reduce: '_count',
    },
    // Mango indexes skip a document missing an indexed field and order an object or array
    // after every string, so a task with such a `status` or `date` is found by no query. A
    // task with no `status` at all (which means "waiting") is among them: the worker gives
    // each one a status, so this view stays small.
    unreachable_by_worker: {
      map:
        'function (doc) { if (typeof doc.worker !== "string") { return; } ' +
        'var s = doc.status; var known = ["waiting", "scheduled", "running", "done", "error", "reschedule", "cancel", "canceled"]; ' +
        'var datedQuery = s === "waiting" || s === "scheduled" || s === "reschedule" || s === "cancel"; ' +
        'var dateReachable = typeof doc.date === "string" && /^\\d{4}-\\d{2}-\\d{2}/.test(doc.date); ' +
        'var leased = doc.lease !== null && typeof doc.lease === "object" && typeof doc.lease.expires_at === "string"; ' +
        'if (s === undefined || known.indexOf(s) < 0 || (datedQuery && !dateReachable) || (s === "running" && !leased)) { emit(doc.worker, null); } }',
    },
  },
};

/** Few revisions kept per document: a task is rewritten on every run, its old bodies are of no use. */
export const REVS_LIMIT = 20;

export type InitOutcome = 'created' | 'updated' | 'unchanged' | 'skipped';

export interface InitStep {
  /** What was looked at, e.g. `index worker-status-date`. */
  what: string;
  outcome: InitOutcome;
  /** Why a step was skipped or what changed. */
  detail?: string;
}

export interface InitReport {
  /** Server URL and database, without credentials. */
  database: string;
  server: ServerInfo;
  steps: InitStep[];
  /** True when any step created or updated something. */
  changed: boolean;
  /** One line per step, ready for the CLI to print. */
  lines: string[];
}

/** Create the database, indexes and design document where missing or different. */
export async function initDatabase(config: AfterConfig, options: { log?: Logger } = {}): Promise<InitReport> {
  const log = options.log ?? silentLogger();
  const conn = openConnection(config, { log });
  const steps: InitStep[] = [];
  let server: ServerInfo;
  try {
    server = await detectServer(conn);
    steps.push(await ensureDatabase(conn));
    steps.push(await ensureRevsLimit(conn, server));
    for (const index of MANGO_INDEXES) steps.push(await ensureIndex(conn, index));
    steps.push(await ensureDesignDoc(conn));
    steps.push({ what: `database ${instancesDbName(conn.dbName)}`, outcome: (await ensureInstancesDb(conn)) ? 'created' : 'unchanged' });
  } finally {
    conn.close();
  }

  const database = `${conn.displayUrl}/${conn.dbName}`;
  const lines = steps.map((step) => `${step.what}: ${step.outcome}${step.detail ? ` (${step.detail})` : ''}`);
  for (const line of lines) log.info(`init ${database}: ${line}`);
  return { database, server, steps, changed: steps.some((s) => s.outcome === 'created' || s.outcome === 'updated'), lines };
}

async function ensureDatabase(conn: Connection): Promise<InitStep> {
  const what = `database ${conn.dbName}`;
  try {
    await conn.request({ method: 'PUT', path: '' });
    return { what, outcome: 'created' };
  } catch (err) {
    // 412 file_exists: created before (by us or anyone).
    if (err instanceof CouchRequestError && err.status === 412) return { what, outcome: 'unchanged' };
    throw err;
  }
}

/**
 * CouchDB keeps 1000 revisions per document by default. pouchdb-server 4.2 has no
 * `_revs_limit` endpoint (a GET is a 404, a PUT of a number a 400), so it is skipped there.
 */
async function ensureRevsLimit(conn: Connection, server: ServerInfo): Promise<InitStep> {
  const what = `_revs_limit ${REVS_LIMIT}`;
  if (server.kind !== 'couchdb') {
    return { what, outcome: 'skipped', detail: `${server.kind} ${server.version} does not support _revs_limit` };
  }
  const current = await conn.request<number>({ path: '_revs_limit' });
  if (current.body === REVS_LIMIT) return { what, outcome: 'unchanged' };
  await conn.request({ method: 'PUT', path: '_revs_limit', body: REVS_LIMIT });
  return { what, outcome: 'updated', detail: `was ${String(current.body)}` };
}

/** POST /db/_index answers `"result": "exists"` for an identical index and writes nothing. */
async function ensureIndex(conn: Connection, index: MangoIndex): Promise<InitStep> {
  const res = await conn.request<{ result?: string }>({
    method: 'POST',
    path: '_index',
    body: { index: { fields: index.fields }, ddoc: index.ddoc, name: index.name, type: 'json' },
  });
  const what = `index ${index.name} (_design/${index.ddoc})`;
  return { what, outcome: res.body.result === 'created' ? 'created' : 'unchanged' };
}

/** Written only when its content differs from what is stored, so a rerun adds no revision. */
async function ensureDesignDoc(conn: Connection): Promise<InitStep> {
  const what = `design document ${DESIGN_DOC_ID}`;
  const stored = await readDoc(conn, DESIGN_DOC_ID);
  if (stored && sameContent(stored, DESIGN_DOC_BODY)) return { what, outcome: 'unchanged' };
  const doc = stored ? { ...stored, ...DESIGN_DOC_BODY } : { _id: DESIGN_DOC_ID, ...DESIGN_DOC_BODY };
  await conn.request({ method: 'PUT', path: DESIGN_DOC_ID, body: doc });
  return { what, outcome: stored ? 'updated' : 'created' };
}

async function readDoc(conn: Connection, id: string): Promise<Record<string, unknown> | null> {
  try {
    return (await conn.request<Record<string, unknown>>({ path: id })).body;
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404) return null;
    throw err;
  }
}

function sameContent(stored: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  return Object.keys(wanted).every((key) => canonicalJson(stored[key]) === canonicalJson(wanted[key]));
}

/** JSON with object keys sorted: a server may return a document's keys in another order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

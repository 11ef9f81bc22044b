/**
 * `after init`: the tasks database, its Mango indexes, its design documents and the control
 * database beside it. Idempotent: a second run writes nothing (no new revision anywhere) and
 * says "unchanged".
 *
 * docs/spec.md §7 "JavaScript in the database is slow": CouchDB 3.x runs `validate_doc_update`, views
 * and filters in `couchjs`, one round trip per document, so on CouchDB nothing a worker does
 * goes through JavaScript: its queries use Mango indexes (a partial one for the malformed
 * tasks), its feed a `_selector` filter. The counts by worker and status are a JavaScript view
 * in a design document of their own that CouchDB never builds in the background
 * (`autoupdate: false`), kept for older readers: After itself reads the counts, lists and job
 * names from the indexes of dashboard-design.ts (task-counts.ts, task-pages.ts), and the run
 * figures from `<db>_stats` (run-stats-db.ts), both made here too. The validator is an opt-in (`after init
 * --validate`). pouchdb-server runs JavaScript in its own process and crashes on `_selector`
 * feeds, and its Mango ignores partial indexes: there the feed filter and the malformed-task
 * query are a design document's filter and view (measured: as fast as Mango there).
 */
import type { AfterConfig } from '../../config/types';
import { CouchRequestError } from '../../errors';
import { silentLogger, type Logger } from '../../log';
import { FINISHED_STATUSES, STATUSES } from '../../types';
import { CONTROL_REVS_LIMIT, DESIGN_DOC_ID, type MangoIndex, REVS_LIMIT, STATS_DOC_ID, VALIDATE_DOC_ID, controlDbName, mangoIndexesFor } from '../schema';
import { detectServer, docPath, openConnection, type Connection } from '../connection';
import type { ServerInfo } from '../types';
import { dashboardIndexesFor, LISTS_DOC_BODY, LISTS_DOC_ID } from './dashboard-design';
import { STATS_DESIGN_BODY, STATS_DESIGN_ID, statsDbName } from '../run-stats-db';
import { VALIDATE_DOC_UPDATE_SOURCE } from './validate-doc';

/**
 * The worker feed's filter on pouchdb-server: the rule of `feedShows` (changes-request.ts).
 * Deletions pass so a worker drops a deleted task from memory; an instance's own claims and
 * finished tasks do not.
 */
export const BY_WORKER_FILTER_SOURCE =
  'function (doc, req) { if (doc._deleted === true) { return true; } if (doc.worker !== req.query.worker) { return false; } ' +
  `var s = doc.status; if (${JSON.stringify(FINISHED_STATUSES)}.indexOf(s) >= 0) { return false; } ` +
  'var own = !!req.query.instance && doc.lease !== null && typeof doc.lease === "object" && doc.lease.instance === req.query.instance; ' +
  'return !(own && s === "running"); }';

const DESIGN_DOC_BODY = {
  language: 'javascript',
  filters: { by_worker: BY_WORKER_FILTER_SOURCE },
  views: {
    // See UNREACHABLE: the same set of documents, for pouchdb-server, whose Mango ignores
    // partial indexes.
    unreachable_by_worker: {
      map:
        'function (doc) { if (typeof doc.worker !== "string") { return; } ' +
        `var s = doc.status; var known = ${JSON.stringify(STATUSES)}; ` +
        'var datedQuery = s === "waiting" || s === "scheduled" || s === "reschedule" || s === "cancel"; ' +
        'var dateReachable = typeof doc.date === "string" && /^\\d{4}-\\d{2}-\\d{2}/.test(doc.date); ' +
        'var leased = doc.lease !== null && typeof doc.lease === "object" && typeof doc.lease.expires_at === "string"; ' +
        'var runNow = (s === "waiting" || s === "scheduled" || s === "reschedule") && typeof doc.run_now === "string"; ' +
        'if (s === undefined || known.indexOf(s) < 0 || (datedQuery && !dateReachable) || (s === "running" && !leased) || runNow) { emit(doc.worker, null); } }',
    },
  },
};

/**
 * The counts view, in a design document no worker query touches, which CouchDB builds only when
 * it is read (`autoupdate: false`: its background indexer would otherwise run every task
 * write through couchjs). The indexer (ken) reads `autoupdate` at the top of the design
 * document; inside `options` it is ignored.
 */
const STATS_DOC_BODY = {
  language: 'javascript',
  autoupdate: false,
  views: {
    by_worker_status: {
      map: "function (doc) { if (typeof doc.worker === 'string') { emit([doc.worker, doc.status], null); } }",
      reduce: '_count',
    },
  },
};

/** The validator refuses clearly invalid task documents at write time (validate-doc.ts). */
const VALIDATE_DOC_BODY = {
  language: 'javascript',
  validate_doc_update: VALIDATE_DOC_UPDATE_SOURCE,
};

export type InitOutcome = 'created' | 'updated' | 'unchanged' | 'skipped' | 'removed';

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

export interface InitOptions {
  log?: Logger;
  /**
   * Install (true) or remove (false) the validate_doc_update. @default
   * `couchdb.validate_doc_update` when it is true; otherwise an installed one is left alone.
   */
  validate?: boolean;
}

/** Create the databases, indexes and design documents where missing or different. */
export async function initDatabase(config: AfterConfig, options: InitOptions = {}): Promise<InitReport> {
  const log = options.log ?? silentLogger();
  const conn = openConnection(config, { log });
  const steps: InitStep[] = [];
  const validate = options.validate ?? (config.couchdb.validate_doc_update ? true : undefined);
  let server: ServerInfo;
  try {
    server = await detectServer(conn);
    steps.push(await ensureDatabase(conn));
    steps.push(await ensureRevsLimit(conn, server));
    for (const index of mangoIndexesFor(server.kind)) steps.push(await ensureIndex(conn, index));
    if (server.kind === 'couchdb') steps.push(await removeDoc(conn, DESIGN_DOC_ID, 'CouchDB workers need no JavaScript'));
    else steps.push(await ensureDesignDoc(conn, DESIGN_DOC_ID, DESIGN_DOC_BODY));
    steps.push(await ensureDesignDoc(conn, STATS_DOC_ID, STATS_DOC_BODY));
    if (validate === true) steps.push(await ensureDesignDoc(conn, VALIDATE_DOC_ID, VALIDATE_DOC_BODY));
    if (validate === false) steps.push(await removeDoc(conn, VALIDATE_DOC_ID, 'asked with --no-validate'));
    steps.push(await ensureDatabase(conn, controlDbName(conn.dbName)));
    steps.push(await ensureRevsLimit(conn, server, controlDbName(conn.dbName), CONTROL_REVS_LIMIT));
    // The dashboard's reads (dashboard-design.ts) and the run figures' database (run-stats-db.ts).
    for (const index of dashboardIndexesFor(server.kind)) steps.push(await ensureIndex(conn, index));
    if (server.kind !== 'couchdb') steps.push(await ensureDesignDoc(conn, LISTS_DOC_ID, LISTS_DOC_BODY));
    const stats = await ensureDatabase(conn, statsDbName(conn.dbName));
    steps.push(stats);
    if (stats.outcome === 'created') await copySecurity(conn, statsDbName(conn.dbName));
    steps.push(await ensureRevsLimit(conn, server, statsDbName(conn.dbName), CONTROL_REVS_LIMIT));
    steps.push(await ensureDesignDoc(conn, STATS_DESIGN_ID, STATS_DESIGN_BODY, statsDbName(conn.dbName)));
  } finally {
    conn.close();
  }

  const database = `${conn.displayUrl}/${conn.dbName}`;
  const lines = steps.map((step) => `${step.what}: ${step.outcome}${step.detail ? ` (${step.detail})` : ''}`);
  for (const line of lines) log.info(`init ${database}: ${line}`);
  return { database, server, steps, changed: steps.some((s) => s.outcome !== 'unchanged' && s.outcome !== 'skipped'), lines };
}

async function ensureDatabase(conn: Connection, db = conn.dbName): Promise<InitStep> {
  const what = `database ${db}`;
  try {
    await conn.request({ method: 'PUT', path: '', db });
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
async function ensureRevsLimit(conn: Connection, server: ServerInfo, db = conn.dbName, limit = REVS_LIMIT): Promise<InitStep> {
  const what = `_revs_limit ${limit}${db === conn.dbName ? '' : ` of ${db}`}`;
  if (server.kind !== 'couchdb') {
    return { what, outcome: 'skipped', detail: `${server.kind} ${server.version} does not support _revs_limit` };
  }
  const current = await conn.request<number>({ path: '_revs_limit', db });
  if (current.body === limit) return { what, outcome: 'unchanged' };
  await conn.request({ method: 'PUT', path: '_revs_limit', body: limit, db });
  return { what, outcome: 'updated', detail: `was ${String(current.body)}` };
}

/** POST /db/_index answers `"result": "exists"` for an identical index and writes nothing. */
async function ensureIndex(conn: Connection, index: MangoIndex & { partial?: Record<string, unknown> }): Promise<InitStep> {
  const definition = { fields: index.fields, ...(index.partial ? { partial_filter_selector: index.partial } : {}) };
  const res = await conn.request<{ result?: string }>({
    method: 'POST',
    path: '_index',
    body: { index: definition, ddoc: index.ddoc, name: index.name, type: 'json' },
  });
  const what = `index ${index.name} (_design/${index.ddoc})`;
  return { what, outcome: res.body.result === 'created' ? 'created' : 'unchanged' };
}

/**
 * Written only when its content differs from what is stored, so a rerun adds no revision. The
 * stored document is replaced whole: a function an older After put there (the validator that
 * lived in `_design/after`) goes with the rewrite.
 */
async function ensureDesignDoc(conn: Connection, id: string, body: Record<string, unknown>, db = conn.dbName): Promise<InitStep> {
  const what = `design document ${id}${db === conn.dbName ? '' : ` of ${db}`}`;
  const stored = await readDoc(conn, id, db);
  if (stored && sameContent(stored, body) && Object.keys(stored).every((key) => key.startsWith('_') || key in body)) {
    return { what, outcome: 'unchanged' };
  }
  const doc = { _id: id, ...(stored ? { _rev: stored._rev } : {}), ...body };
  await conn.request({ method: 'PUT', path: docPath(id), body: doc, db });
  return { what, outcome: stored ? 'updated' : 'created' };
}

/** Remove a design document After no longer wants on this server (an older After's). */
async function removeDoc(conn: Connection, id: string, why: string): Promise<InitStep> {
  const what = `design document ${id}`;
  const stored = await readDoc(conn, id);
  if (!stored) return { what, outcome: 'unchanged' };
  await conn.request({ method: 'DELETE', path: docPath(id), qs: { rev: String(stored._rev) } });
  return { what, outcome: 'removed', detail: why };
}

async function readDoc(conn: Connection, id: string, db = conn.dbName): Promise<Record<string, unknown> | null> {
  try {
    return (await conn.request<Record<string, unknown>>({ path: docPath(id), db })).body;
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404) return null;
    throw err;
  }
}

/**
 * A new database beside the tasks one gets the tasks database's readers and writers (its
 * `_security`): the workers that write tasks write their run figures there too, and the
 * dashboard's signed-in members read them.
 */
async function copySecurity(conn: Connection, db: string): Promise<void> {
  const security = (await conn.request<Record<string, unknown>>({ path: '_security' })).body;
  if (security && typeof security === 'object' && Object.keys(security).length > 0) {
    await conn.request({ method: 'PUT', path: '_security', db, body: security });
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

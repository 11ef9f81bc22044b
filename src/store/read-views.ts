/**
 * Where each of the dashboard's reads is answered on each server, and how a view is read
 * without waiting: the view paths behind the same keys (dashboard-design.ts, design.ts) and the
 * query string that returns the index as it is (CouchDB `update=lazy`: answer now, update
 * after; pouchdb-server `stale=ok`, its views kept up to date by the embedded server itself).
 */
import type { Connection } from './connection';
import { DEPENDENTS, JOB_NAME_STATUS_DATE, JOB_STRING_STATUS_DATE, LISTS_DOC_ID, REPEATING } from './dashboard-design';
import { BY_WORKER_STATUS_VIEW, STATUS_DATE, UNREACHABLE, WORKER_STATUS_DATE, type MangoIndex } from './design';
import type { ServerKind } from './types';

/** A connection and the kind of server behind it: the reads differ by server. */
export interface ReadSide {
  conn: Connection;
  kind: ServerKind;
}

/** `_design/<ddoc>/_view/<name>` of a Mango index (CouchDB). */
export function mangoView(index: MangoIndex): string {
  return `_design/${encodeURIComponent(index.ddoc)}/_view/${encodeURIComponent(index.name)}`;
}

function listsView(name: string): string {
  return `${LISTS_DOC_ID}/_view/${name}`;
}

/** Views whose keys start [status, date], [worker, status, date] and [job, status, date]. */
export interface ListViews {
  byStatus: string;
  byWorker: string;
  /** Two on CouchDB: the long job form and the short one, each its own index. */
  byJob: readonly string[];
  /** Keyed [date], repeating tasks only. */
  repeating: string;
  /** [worker, status] counts (`group_level=2`), and where to find the tasks no index holds. */
  counts: { view: string; groupLevel: number; unindexed?: string };
  /** The keys end with the task id (pouchdb-server: no `startkey_docid` there); else the view's own doc id order. */
  idInKey: boolean;
}

export function listViews(kind: ServerKind): ListViews {
  if (kind === 'couchdb') {
    return {
      byStatus: mangoView(STATUS_DATE),
      byWorker: mangoView(WORKER_STATUS_DATE),
      byJob: [mangoView(JOB_NAME_STATUS_DATE), mangoView(JOB_STRING_STATUS_DATE)],
      repeating: mangoView(REPEATING),
      counts: { view: mangoView(WORKER_STATUS_DATE), groupLevel: 2, unindexed: mangoView(UNREACHABLE) },
      idInKey: false,
    };
  }
  return {
    byStatus: listsView('by_status'),
    byWorker: listsView('by_worker'),
    byJob: [listsView('by_job')],
    repeating: listsView('repeating'),
    counts: { view: BY_WORKER_STATUS_VIEW, groupLevel: 2 },
    idInKey: true,
  };
}

export const DEPENDENTS_INDEX = DEPENDENTS;
export const LISTS_DEPENDENTS_VIEW = listsView('dependents');

/** The query string that reads a view as it is, without waiting for it to catch up. */
export function noWait(kind: ServerKind): Record<string, string> {
  return kind === 'couchdb' ? { update: 'lazy' } : { stale: 'ok' };
}

/**
 * How far an index may lag the database (in changes) and still be brought up to date by the
 * read itself: a few hundred changes cost a few milliseconds to index, so a read after a quiet
 * moment is exact; past that, the read answers from the index as it is and says how far behind.
 */
export const FRESH_LAG = 1000;
/** The database's update sequence is asked at most this often per connection. */
const DB_SEQ_TTL_MS = 250;

export interface ViewRow<T = unknown> {
  id: string;
  key: unknown;
  value: unknown;
  doc?: T;
}

export interface ViewAnswer<T = unknown> {
  rows: ViewRow<T>[];
  /** Changes of the database the index had not taken in when it answered (0: up to date). */
  lag: number;
}

const dbSeqs = new WeakMap<Connection, { atMs: number; seq: Promise<number> }>();

/** The number in front of an update sequence (CouchDB's is `<n>-<opaque>`, pouchdb-server's a number). */
export function seqNumber(seq: unknown): number {
  const n = parseInt(String(seq ?? ''), 10);
  return Number.isFinite(n) ? n : 0;
}

/** The database's update sequence number, asked at most every DB_SEQ_TTL_MS. */
export function databaseSeq(conn: Connection, db?: string): Promise<number> {
  if (db !== undefined && db !== conn.dbName) {
    return conn.request<{ update_seq: unknown }>({ path: '', db }).then((res) => seqNumber(res.body.update_seq));
  }
  const cached = dbSeqs.get(conn);
  if (cached && Date.now() - cached.atMs < DB_SEQ_TTL_MS) return cached.seq;
  const seq = conn.request<{ update_seq: unknown }>({ path: '' }).then((res) => seqNumber(res.body.update_seq));
  seq.catch(() => dbSeqs.delete(conn));
  dbSeqs.set(conn, { atMs: Date.now(), seq });
  return seq;
}

/**
 * A view read that never waits for a large index update: read as the index is, and when it is
 * only a little behind the database read again up to date (see FRESH_LAG).
 */
export async function readView<T = unknown>(read: ReadSide, view: string, qs: Record<string, unknown>, db?: string): Promise<ViewAnswer<T>> {
  const request = (extra: Record<string, unknown>) =>
    read.conn.request<{ rows: ViewRow<T>[]; update_seq?: unknown }>({ path: view, qs: { ...qs, ...extra } as Record<string, string>, ...(db ? { db } : {}) });
  const [dbSeq, stale] = await Promise.all([databaseSeq(read.conn, db), request({ ...noWait(read.kind), update_seq: true })]);
  const lag = Math.max(0, dbSeq - seqNumber(stale.body.update_seq));
  if (lag === 0 || lag > FRESH_LAG) return { rows: stale.body.rows, lag };
  const fresh = await request({});
  return { rows: fresh.body.rows, lag: 0 };
}

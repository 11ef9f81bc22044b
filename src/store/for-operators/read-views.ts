/**
 * Where each of the dashboard's reads is answered on each server, and how a view is read
 * without waiting: the view paths behind the same keys (dashboard-design.ts, design.ts) and the
 * query string that returns the index as it is (CouchDB `update=lazy`: answer now, update
 * after; pouchdb-server `stale=ok`, its views kept up to date by the embedded server itself).
 */
import { AfterError } from '../../errors';
import type { TaskDoc } from '../../types';
import type { Connection } from '../connection';
import { DEPENDENTS, JOB_NAME_STATUS_DATE, JOB_STRING_STATUS_DATE, LISTS_KEYS, LISTS_VIEW, REPEATING } from './dashboard-design';
import { STATUS_DATE, UNREACHABLE, WORKER_STATUS_DATE, type MangoIndex } from '../schema';
import type { ServerKind } from '../types';

/** A connection and the kind of server behind it: the reads differ by server. */
export interface ReadSide {
  conn: Connection;
  kind: ServerKind;
}

/** `_design/<ddoc>/_view/<name>` of a Mango index (CouchDB). */
export function mangoView(index: MangoIndex): string {
  return `_design/${encodeURIComponent(index.ddoc)}/_view/${encodeURIComponent(index.name)}`;
}

/** A view and the key prefix of one index in it (pouchdb-server's lists share one view). */
export interface ViewRange {
  view: string;
  prefix: readonly unknown[];
}

/** Where the keys [status, date], [worker, status, date], [job, status, date] and [date] of repeating tasks are. */
export interface ListViews {
  byStatus: ViewRange;
  byWorker: ViewRange;
  /** Two on CouchDB: the long job form and the short one, each its own index. */
  byJob: readonly ViewRange[];
  repeating: ViewRange;
  /** [worker, status] counts after the prefix (`group_level` = prefix + 2), and where the tasks no index holds are (CouchDB). */
  counts: ViewRange & { unindexed?: string };
  /** The keys end with the task id (pouchdb-server: no `startkey_docid` there); else the view's own doc id order. */
  idInKey: boolean;
}

export function listViews(kind: ServerKind): ListViews {
  if (kind === 'couchdb') {
    const at = (index: MangoIndex): ViewRange => ({ view: mangoView(index), prefix: [] });
    return {
      byStatus: at(STATUS_DATE),
      byWorker: at(WORKER_STATUS_DATE),
      byJob: [at(JOB_NAME_STATUS_DATE), at(JOB_STRING_STATUS_DATE)],
      repeating: at(REPEATING),
      counts: { ...at(WORKER_STATUS_DATE), unindexed: mangoView(UNREACHABLE) },
      idInKey: false,
    };
  }
  const at = (key: string): ViewRange => ({ view: LISTS_VIEW, prefix: [key] });
  return {
    byStatus: at(LISTS_KEYS.status),
    byWorker: at(LISTS_KEYS.worker),
    byJob: [at(LISTS_KEYS.job)],
    repeating: at(LISTS_KEYS.repeating),
    counts: at(LISTS_KEYS.counts),
    idInKey: true,
  };
}

export const DEPENDENTS_INDEX = DEPENDENTS;

/** The views of CouchDB's partial indexes (see readView). */
const PARTIAL_VIEWS = new Set([UNREACHABLE, JOB_STRING_STATUS_DATE, REPEATING, DEPENDENTS].map(mangoView));
/** pouchdb-server: the tasks that name a task in their `after`, keyed [prefix, id]. */
export const LISTS_DEPENDENTS: ViewRange = { view: LISTS_VIEW, prefix: [LISTS_KEYS.dependents] };

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
  if (PARTIAL_VIEWS.has(view)) return readPartialView<T>(read, view, qs, db);
  const request = (extra: Record<string, unknown>) =>
    read.conn.request<{ rows: ViewRow<T>[]; update_seq?: unknown; total_rows?: number }>({ path: view, qs: { ...qs, ...extra } as Record<string, string>, ...(db ? { db } : {}) });
  const [dbSeq, stale] = await Promise.all([databaseSeq(read.conn, db), request({ ...noWait(read.kind), update_seq: true })]);
  const lag = Math.max(0, dbSeq - seqNumber(stale.body.update_seq));
  if (lag === 0 || lag > FRESH_LAG) return { rows: stale.body.rows, lag };
  const fresh = await request({});
  return { rows: fresh.body.rows, lag: 0 };
}

/** One view read (readView); a missing view means `after init` has not made it. */
export async function viewRows(read: ReadSide, view: string, qs: Record<string, unknown>, db?: string): Promise<ViewAnswer<TaskDoc>> {
  try {
    return await readView<TaskDoc>(read, view, qs, db);
  } catch (err) {
    if ((err as { status?: number }).status === 404 && !/database does not exist/i.test(String((err as { reason?: string }).reason))) {
      throw new AfterError('E_NOT_INITIALIZED', `the database has no ${view.split('/_view/')[0]}; run 'after init' (this After needs its new indexes)`, { cause: err });
    }
    throw err;
  }
}


/** How long a read of a partial index waits for it to be up to date before taking it as it is. */
const PARTIAL_WAIT_MS = 300;

/**
 * CouchDB's partial indexes (a few documents each) advance their update sequence only with the
 * shards that hold a matching document, so it never says how far behind they are. Read up to
 * date (cheap: its indexer keeps them so); if that takes longer than PARTIAL_WAIT_MS (a bulk load
 * not indexed yet), as they are (CouchDB answers a stale read while an index is being updated).
 */
async function readPartialView<T>(read: ReadSide, view: string, qs: Record<string, unknown>, db?: string): Promise<ViewAnswer<T>> {
  const request = (extra: Record<string, unknown>, signal?: AbortSignal) =>
    read.conn.request<{ rows: ViewRow<T>[] }>({ path: view, qs: { ...qs, ...extra } as Record<string, string>, ...(db ? { db } : {}), ...(signal ? { signal } : {}) });
  const fresh = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), PARTIAL_WAIT_MS)));
  const exact = request({}, fresh.signal);
  try {
    const first = await Promise.race([exact, late]);
    if (first !== 'late') return { rows: first.body.rows, lag: 0 };
    fresh.abort();
    exact.catch(() => undefined);
    return { rows: (await request(noWait(read.kind))).body.rows, lag: 0 };
  } finally {
    clearTimeout(timer);
  }
}

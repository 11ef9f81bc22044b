/**
 * Task counts by worker and status, at once at any size: CouchDB sums them from the
 * `[worker, status, date]` Mango index the workers' queries keep up to date (its view's
 * built-in `_count`, `group_level=2`, in Erlang), plus the few tasks no index holds (no status,
 * or no date: the `unreachable` partial index, counted as status `(unindexed)`); pouchdb-server
 * from `_design/after-stats`, which the embedded server keeps up to date itself. Neither read
 * waits for its index to catch up (read-views.ts `noWait`).
 */
import type { Connection } from '../connection';
import { detectServer } from '../connection';
import { databaseSeq, listViews, seqNumber, viewRows, type ReadSide } from './read-views';
import type { ServerKind } from '../types';

export interface StatusCount {
  worker: string;
  status: string;
  count: number;
}

/** Tasks an index leaves out (no status, no date, an unknown status): the worker puts them right. */
export const UNINDEXED = '(unindexed)';

export async function readStatusCounts(read: ReadSide): Promise<StatusCount[]> {
  return (await readStatusCountsWithLag(read)).counts;
}

/** The counts, and how many changes of the database they may not show yet (0: exact). */
export async function readStatusCountsWithLag(read: ReadSide): Promise<{ counts: StatusCount[]; lag: number }> {
  if (read.kind !== 'couchdb') {
    const kept = await readKeptCounts(read);
    if (kept) return kept;
  }
  return readCountsView(read);
}

/**
 * pouchdb-server: the counts the embedded server keeps as tasks change (embedded/counts-keeper.ts),
 * when they are up to date or the database is too large for its view's grouped read (which goes
 * over every row there); undefined when there are none (an older server, warming turned off).
 */
async function readKeptCounts(read: ReadSide): Promise<{ counts: StatusCount[]; lag: number } | undefined> {
  const kept = await readKept(read);
  return kept && { counts: kept.counts.map(([worker, status, count]) => ({ worker, status, count })), lag: kept.lag };
}

/**
 * pouchdb-server: the job names and their counts the embedded server keeps, on the same terms
 * as the counts (a grouped read of the job names goes over every task there).
 */
export async function readKeptJobNames(read: ReadSide): Promise<Array<{ job: string; count: number }> | undefined> {
  const kept = await readKept(read);
  return kept?.jobs && kept.jobs.map(([job, count]) => ({ job, count })).sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0));
}

interface KeptCounts {
  counts: Array<[string, string, number]>;
  jobs?: Array<[string, number]>;
  lag: number;
}

/** `_local/after-counts` when it is up to date or the database is large; else undefined. */
async function readKept(read: ReadSide): Promise<KeptCounts | undefined> {
  let kept: { seq?: unknown; counts?: Array<[string, string, number]>; jobs?: Array<[string, number]> };
  try {
    kept = (await read.conn.request<typeof kept>({ path: KEPT_COUNTS_PATH })).body;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
  if (!Array.isArray(kept.counts)) return undefined;
  const lag = Math.max(0, (await databaseSeq(read.conn)) - seqNumber(kept.seq));
  const total = kept.counts.reduce((sum, [, , count]) => sum + count, 0);
  if (lag > 0 && total <= VIEW_COUNT_LIMIT) return undefined;
  return { counts: kept.counts, ...(Array.isArray(kept.jobs) ? { jobs: kept.jobs } : {}), lag };
}

/** Where the embedded server keeps the counts (counts-keeper.ts COUNTS_DOC_ID). */
export const KEPT_COUNTS_PATH = '_local/after-counts';
/** Up to this many tasks, a grouped read of the counts view is fast enough to be exact. */
const VIEW_COUNT_LIMIT = 10_000;

async function readCountsView(read: ReadSide): Promise<{ counts: StatusCount[]; lag: number }> {
  const { counts } = listViews(read.kind);
  const grouped = await viewRows(read, counts.view, { group_level: counts.prefix.length + 2, startkey: [...counts.prefix], endkey: [...counts.prefix, {}] });
  const result = grouped.rows.map((row) => {
    const key = (row.key as unknown[]).slice(counts.prefix.length);
    // No status means waiting (SPEC §3).
    return { worker: String(key[0]), status: typeof key[1] === 'string' ? key[1] : key[1] === null || key[1] === undefined ? 'waiting' : String(key[1]), count: Number(row.value) };
  });
  let lag = grouped.lag;
  if (counts.unindexed) {
    const unindexed = await viewRows(read, counts.unindexed, { group_level: 1 });
    lag = Math.max(lag, unindexed.lag);
    for (const row of unindexed.rows) result.push({ worker: String((row.key as unknown[])[0]), status: UNINDEXED, count: Number(row.value) });
  }
  return { counts: result.filter((row) => row.count > 0), lag };
}

const kinds = new WeakMap<Connection, Promise<ServerKind>>();

/** The kind of server behind a connection, asked once (`GET /`). */
export function serverKindOf(conn: Connection): Promise<ServerKind> {
  let kind = kinds.get(conn);
  if (!kind) {
    kind = detectServer(conn).then((info) => info.kind);
    kind.catch(() => kinds.delete(conn));
    kinds.set(conn, kind);
  }
  return kind;
}

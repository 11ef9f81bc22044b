/**
 * Task counts by worker and status, at once at any size: CouchDB sums them from the
 * `[worker, status, date]` Mango index the workers' queries keep up to date (its view's
 * built-in `_count`, `group_level=2`, in Erlang), plus the few tasks no index holds (no status,
 * or no date: the `unreachable` partial index, counted as status `(unindexed)`); pouchdb-server
 * from `_design/after-stats`, which the embedded server keeps up to date itself. Neither read
 * waits for its index to catch up (read-views.ts `noWait`).
 */
import type { Connection } from './connection';
import { detectServer } from './connection';
import { listViews, type ReadSide } from './read-views';
import { viewRows } from './task-pages';
import type { ServerKind } from './types';

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
  const { counts } = listViews(read.kind);
  const grouped = await viewRows(read, counts.view, { group_level: counts.groupLevel });
  const result = grouped.rows.map((row) => {
    const key = row.key as unknown[];
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

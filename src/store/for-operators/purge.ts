/**
 * Retention (`after purge --older-than 30d`): every run writes a revision and every delete
 * leaves a tombstone, so a busy tasks database grows without end unless finished tasks are
 * removed. CouchDB's `_purge` removes them for good (at most 100 ids a request, its default
 * `max_document_id_number`); pouchdb-server has no `_purge`, so there finished tasks are
 * deleted and the database compacted, which drops their bodies and old revisions.
 */
import { CouchRequestError } from '../../errors';
import type { TaskDoc } from '../../types';
import { bulkVerdict, postBulkDocs } from '../bulk-docs';
import type { Connection } from '../connection';
import { STATUS_DATE, useIndex } from '../schema';
import type { ServerInfo } from '../types';

export const FINISHED_STATUSES = ['done', 'error', 'canceled'] as const;
const PAGE = 500;
const PURGE_BATCH = 100;

export interface PurgeOptions {
  /** Tasks whose `date` is before this (ISO 8601) are purged. */
  before: string;
  /** Only this worker's tasks. */
  worker?: string;
  /** Count, change nothing. */
  dryRun?: boolean;
}

export interface PurgeReport {
  /** Finished tasks older than the cutoff. */
  matched: number;
  /** Removed (0 on a dry run); a task changed meanwhile is left alone. */
  removed: number;
  method: 'purge' | 'delete';
  /** 'started', or why compaction was skipped. */
  compaction: string;
}

export async function purgeFinished(conn: Connection, server: ServerInfo, options: PurgeOptions): Promise<PurgeReport> {
  const method = server.kind === 'couchdb' ? 'purge' : 'delete';
  let matched = 0;
  let removed = 0;
  for (const status of FINISHED_STATUSES) {
    // Removed documents leave the index; the ones left (other workers', changed meanwhile,
    // or all of them on a dry run) stay at the front, so the next read skips them.
    let skip = 0;
    for (;;) {
      const page = await findFinished(conn, status, options.before, skip);
      const docs = options.worker === undefined ? page : page.filter((doc) => doc.worker === options.worker);
      matched += docs.length;
      const gone = !options.dryRun && docs.length > 0 ? await remove(conn, method, docs) : 0;
      removed += gone;
      if (page.length < PAGE) break;
      skip += page.length - gone;
    }
  }
  const compaction = options.dryRun || removed === 0 ? 'not needed' : await compact(conn);
  return { matched, removed, method, compaction };
}

async function findFinished(conn: Connection, status: string, before: string, skip: number): Promise<TaskDoc[]> {
  const res = await conn.request<{ docs: TaskDoc[] }>({
    method: 'POST',
    path: '_find',
    body: {
      selector: { status, date: { $lt: before } },
      sort: [{ status: 'asc' }, { date: 'asc' }],
      use_index: useIndex(STATUS_DATE),
      fields: ['_id', '_rev', 'worker', 'status', 'date'],
      limit: PAGE,
      skip,
    },
  });
  return res.body.docs ?? [];
}

async function remove(conn: Connection, method: 'purge' | 'delete', docs: TaskDoc[]): Promise<number> {
  let removed = 0;
  if (method === 'purge') {
    for (let i = 0; i < docs.length; i += PURGE_BATCH) {
      const batch = docs.slice(i, i + PURGE_BATCH);
      const body = Object.fromEntries(batch.map((doc) => [doc._id, [doc._rev]]));
      const res = await conn.request<{ purged: Record<string, string[]> }>({ method: 'POST', path: '_purge', body });
      removed += Object.values(res.body.purged ?? {}).filter((revs) => revs.length > 0).length;
    }
    return removed;
  }
  const tombstones = docs.map((doc) => ({ _id: doc._id, _rev: doc._rev, _deleted: true }));
  const answer = await postBulkDocs(conn.request, tombstones);
  // A task changed since it was read is a conflict: left alone.
  return answer.rows.filter((row) => bulkVerdict(row).kind === 'written').length;
}

async function compact(conn: Connection): Promise<string> {
  try {
    await conn.request({ method: 'POST', path: '_compact', body: {} });
    return 'started';
  } catch (err) {
    if (err instanceof CouchRequestError && err.code === 'E_DB_AUTH') return 'skipped (compaction needs a server admin)';
    throw err;
  }
}


/**
 * Every task findable at a million: lists by status with keyset paging, filtered by worker name
 * and job, sorted by date either way; search by id prefix; what waits for a task; the repeating
 * tasks. Each read is one range of an index (read-views.ts), so a page costs the same on the
 * first page as on the ten-thousandth, and never waits for an index to catch up.
 *
 * Keyset paging: a page ends with the (date, id) of its last task; the next page starts each
 * index range at that key (`startkey` + `startkey_docid`, the order a view keeps its rows in)
 * and drops that one row. Tasks that change status meanwhile leave or enter the list; none
 * that stays is skipped or shown twice.
 */
import { AfterError } from '../../errors';
import type { TaskDoc } from '../../types';
import { DEPENDENTS_INDEX, LISTS_DEPENDENTS, listViews, viewRows, type ReadSide } from './read-views';
import { useIndex } from '../schema';
import { readKeptJobNames } from './task-counts';

/** The lists a user picks from; a group of statuses that mean one thing to a user. */
export const STATUS_GROUPS = {
  waiting: ['waiting', 'reschedule'],
  scheduled: ['scheduled'],
  running: ['running'],
  paused: ['paused'],
  error: ['error'],
  done: ['done'],
  canceled: ['cancel', 'canceled'],
} as const;
export type StatusGroup = keyof typeof STATUS_GROUPS;
export const STATUS_GROUP_NAMES = Object.keys(STATUS_GROUPS) as StatusGroup[];

export interface PageCursor {
  date: string;
  id: string;
}

export interface PageQuery {
  status: StatusGroup;
  worker?: string;
  job?: string;
  /** Only tasks dated before this (ISO 8601, compared as stored): "finished before". */
  before?: string;
  /** By date. @default 'asc' */
  order?: 'asc' | 'desc';
  /** @default 50 */
  limit?: number;
  /** The last task of the page before. */
  cursor?: PageCursor;
}

export interface TaskPage {
  tasks: TaskDoc[];
  /** Where the next page starts; null on the last page. */
  next: PageCursor | null;
}

export const MAX_PAGE = 500;
/** Rows one page may read past the filter (worker + job) before it answers with what it has. */
const SCAN_LIMIT = 5000;

interface Range {
  view: string;
  prefix: unknown[];
  /** Kept when a filter the index cannot apply (the worker, on a job index) passes. */
  keep(doc: TaskDoc): boolean;
}

/** One page of the list `query` names. */
export async function readTaskPage(read: ReadSide, query: PageQuery): Promise<TaskPage> {
  const limit = Math.max(1, Math.min(MAX_PAGE, query.limit ?? 50));
  const statuses = STATUS_GROUPS[query.status];
  if (!statuses) throw new AfterError('E_USAGE', `status must be one of ${STATUS_GROUP_NAMES.join(', ')}`);
  const views = listViews(read.kind);
  const ranges: Range[] = [];
  for (const status of statuses) {
    if (query.job !== undefined) {
      for (const at of views.byJob) ranges.push({ view: at.view, prefix: [...at.prefix, query.job, status], keep: (doc) => query.worker === undefined || doc.worker === query.worker });
    } else if (query.worker !== undefined) {
      ranges.push({ view: views.byWorker.view, prefix: [...views.byWorker.prefix, query.worker, status], keep: () => true });
    } else {
      ranges.push({ view: views.byStatus.view, prefix: [...views.byStatus.prefix, status], keep: () => true });
    }
  }
  const order = query.order ?? 'asc';
  const found = await Promise.all(ranges.map((range) => readRange(read, range, { order, limit, cursor: query.cursor, before: query.before })));
  // CouchDB's indexes leave out a task posted without a status (it means waiting) until a
  // worker gives it one: the waiting list takes them from the small index of such tasks.
  if (read.kind === 'couchdb' && query.status === 'waiting') found.push(await readStatusless(read, { ...query, order, limit }));
  return mergePages(found, order, limit);
}

/** Status-less tasks (CouchDB's `unreachable` partial index, a few at most) as one range of the waiting list. */
async function readStatusless(read: ReadSide, query: PageQuery & { order: 'asc' | 'desc'; limit: number }): Promise<RangeResult> {
  const qs: Record<string, unknown> = { reduce: false, include_docs: true, limit: SCAN_LIMIT };
  if (query.worker !== undefined) qs.key = [query.worker];
  const rows = (await viewRows(read, listViews(read.kind).counts.unindexed!, qs)).rows;
  const after = (doc: TaskDoc): boolean => {
    if (!query.cursor) return true;
    const byDate = compare(String(doc.date), query.cursor.date) || compare(doc._id, query.cursor.id);
    return query.order === 'asc' ? byDate > 0 : byDate < 0;
  };
  const docs = rows
    .flatMap((row) => (row.doc ? [row.doc] : []))
    .filter((doc) => doc.status === undefined && typeof doc.date === 'string' && after(doc))
    .filter((doc) => query.before === undefined || String(doc.date) < query.before)
    .filter((doc) => query.job === undefined || doc.job === query.job || (doc.job as { name?: unknown } | undefined)?.name === query.job);
  return { docs, exhausted: true };
}

/** Repeating tasks by date (the schedules), optionally of one worker. */
export async function readRepeatingPage(read: ReadSide, query: { worker?: string; limit?: number; cursor?: PageCursor }): Promise<TaskPage> {
  const limit = Math.max(1, Math.min(MAX_PAGE, query.limit ?? 50));
  const { repeating } = listViews(read.kind);
  const range: Range = { view: repeating.view, prefix: [...repeating.prefix], keep: (doc) => query.worker === undefined || doc.worker === query.worker };
  return mergePages([await readRange(read, range, { order: 'asc', limit, cursor: query.cursor })], 'asc', limit);
}

interface RangeResult {
  docs: TaskDoc[];
  exhausted: boolean;
}

async function readRange(
  read: ReadSide,
  range: Range,
  options: { order: 'asc' | 'desc'; limit: number; cursor?: PageCursor; before?: string },
): Promise<RangeResult> {
  const { order, limit } = options;
  const idInKey = listViews(read.kind).idInKey;
  const low = [...range.prefix, ''];
  const high = [...range.prefix, options.before ?? {}];
  let cursor = options.cursor;
  const docs: TaskDoc[] = [];
  let scanned = 0;
  for (;;) {
    const chunk = limit + 1;
    const qs: Record<string, unknown> = {
      reduce: false,
      include_docs: true,
      limit: chunk,
      descending: order === 'desc',
      startkey: cursor ? [...range.prefix, cursor.date, ...(idInKey ? [cursor.id] : [])] : order === 'asc' ? low : high,
      endkey: order === 'asc' ? high : low,
    };
    if (cursor && !idInKey) qs.startkey_docid = cursor.id;
    if (options.before !== undefined && order === 'asc') qs.inclusive_end = false;
    const rows = (await viewRows(read, range.view, qs)).rows;
    scanned += rows.length;
    for (const row of rows) {
      const doc = row.doc;
      if (!doc || (cursor && row.id === cursor.id && doc.date === cursor.date)) continue;
      if (options.before !== undefined && !(typeof doc.date === 'string' && doc.date < options.before)) continue;
      if (range.keep(doc)) docs.push(doc);
    }
    const last = rows[rows.length - 1];
    if (rows.length < chunk || !last) return { docs, exhausted: true };
    if (docs.length >= limit || scanned >= SCAN_LIMIT) return { docs, exhausted: false };
    cursor = { date: String((last.key as unknown[])[range.prefix.length]), id: last.id };
  }
}

function mergePages(ranges: RangeResult[], order: 'asc' | 'desc', limit: number): TaskPage {
  const sign = order === 'asc' ? 1 : -1;
  const all = ranges.flatMap((range) => range.docs).sort((a, b) => sign * (compare(String(a.date), String(b.date)) || compare(a._id, b._id)));
  const tasks = all.slice(0, limit);
  const more = all.length > limit || ranges.some((range) => !range.exhausted);
  const last = tasks[tasks.length - 1];
  return { tasks, next: more && last ? { date: String(last.date), id: last._id } : null };
}

/** Tasks whose id starts with `prefix` (never `_`: CouchDB's own documents), by id. */
export async function searchById(read: ReadSide, prefix: string, options: { limit?: number; after?: string } = {}): Promise<{ tasks: TaskDoc[]; next: string | null }> {
  if (prefix === '' || prefix.startsWith('_')) return { tasks: [], next: null };
  const limit = Math.max(1, Math.min(MAX_PAGE, options.limit ?? 50));
  const qs: Record<string, unknown> = { startkey: options.after ?? prefix, endkey: `${prefix}\ufff0`, limit: limit + 1, include_docs: true };
  const res = await read.conn.request<{ rows: Array<{ id: string; doc?: TaskDoc }> }>({ path: '_all_docs', qs: qs as Record<string, string> });
  const docs = res.body.rows.filter((row) => row.id !== options.after && row.doc && typeof row.doc.worker === 'string').map((row) => row.doc!);
  const tasks = docs.slice(0, limit);
  return { tasks, next: docs.length > limit ? tasks[tasks.length - 1]!._id : null };
}

/** Job names with their task counts (every status), from the job indexes. */
export async function readJobNames(read: ReadSide): Promise<Array<{ job: string; count: number }>> {
  if (read.kind !== 'couchdb') {
    const kept = await readKeptJobNames(read);
    if (kept) return kept;
  }
  const counts = new Map<string, number>();
  for (const at of listViews(read.kind).byJob) {
    const res = await viewRows(read, at.view, { group_level: at.prefix.length + 1, startkey: [...at.prefix], endkey: [...at.prefix, {}] });
    for (const row of res.rows) {
      const job = (row.key as unknown[])[at.prefix.length];
      if (typeof job === 'string') counts.set(job, (counts.get(job) ?? 0) + Number(row.value));
    }
  }
  if (read.kind === 'couchdb') {
    // Tasks without a status are in no job index there until a worker gives them one (readStatusless).
    const statusless = await readStatusless(read, { status: 'waiting', order: 'asc', limit: SCAN_LIMIT });
    for (const doc of statusless.docs) {
      const job = typeof doc.job === 'string' ? doc.job : (doc.job as { name?: unknown } | undefined)?.name;
      if (typeof job === 'string') counts.set(job, (counts.get(job) ?? 0) + 1);
    }
  }
  return [...counts.entries()].map(([job, count]) => ({ job, count })).sort((a, b) => compare(a.job, b.job));
}

/** The tasks that name `id` in their `after`: what waits for it (at most `limit`). */
export async function readDependents(read: ReadSide, id: string, limit = 100): Promise<TaskDoc[]> {
  if (read.kind === 'couchdb') {
    const res = await read.conn.request<{ docs: TaskDoc[] }>({
      method: 'POST',
      path: '_find',
      body: { selector: { after: { $gt: null, $elemMatch: { $eq: id } } }, use_index: useIndex(DEPENDENTS_INDEX), fields: ['_id', 'worker', 'status', 'date', 'after'], limit },
    });
    return res.body.docs;
  }
  const res = await viewRows(read, LISTS_DEPENDENTS.view, { key: [...LISTS_DEPENDENTS.prefix, id], reduce: false, include_docs: true, limit });
  return res.rows.flatMap((row) => (row.doc ? [row.doc] : []));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Bulk actions on a filtered list or on selected tasks: retry the failed, cancel, pause or
 * resume, and delete finished tasks older than a date. Each task gets the same ordinary write
 * with its current `_rev` as the single actions do (store/task-actions.ts, dashboard-data.ts),
 * a page of up to 200 at a time in one `_bulk_docs`: a 409 on a row means the task changed
 * meanwhile, so it is read again and checked again (twice at most), never overwritten. The
 * answer counts what was done and what was skipped, and why.
 *
 * "All matching" walks the list with its keyset cursor, so a task the action moves out of the
 * list (now canceled) is passed once, and tasks that enter it meanwhile may be left for a
 * second run.
 */
import { randomBytes } from 'node:crypto';
import { AfterError } from '../errors';
import type { Logger } from '../log';
import type { ReadSide } from '../store/for-operators/read-views';
import { readTaskPage, STATUS_GROUPS, type PageCursor, type PageQuery } from '../store/for-operators/task-pages';
import type { TaskDoc } from '../types';

export type BulkAction = 'retry' | 'cancel' | 'pause' | 'resume' | 'delete';
export const BULK_ACTIONS: readonly BulkAction[] = ['retry', 'cancel', 'pause', 'resume', 'delete'];

export interface BulkRequest {
  action: BulkAction;
  /** The selected tasks; or else every task `filter` lists. */
  ids?: string[];
  filter?: Omit<PageQuery, 'cursor' | 'limit' | 'order'>;
}

export interface BulkProgress {
  id: string;
  action: BulkAction;
  done: number;
  /** Skipped tasks by reason ("is done", "changed meanwhile and kept changing"). */
  skipped: Record<string, number>;
  finished: boolean;
  error?: string;
}

const PAGE = 200;
const CONFLICT_ROUNDS = 3;
export const MAX_SELECTED = 1000;
const FINISHED = ['done', 'error', 'canceled'];

/** The write `action` makes of `doc`, or why `doc` is skipped. Pure. */
export function planBulkWrite(doc: TaskDoc, action: BulkAction): { write: TaskDoc } | { skip: string } {
  const status = typeof doc.status === 'string' ? doc.status : 'waiting';
  switch (action) {
    case 'retry':
      return status === 'error' ? { write: { ...doc, status: 'waiting', retries: 0 } } : { skip: `is ${status}, not failed` };
    case 'cancel':
      if (FINISHED.includes(status) || status === 'cancel') return { skip: `is ${status}` };
      return { write: { ...doc, status: 'cancel' } };
    case 'pause':
      if (status === 'paused') return { skip: 'is already paused' };
      if (FINISHED.includes(status) || status === 'cancel') return { skip: `is ${status}` };
      return { write: { ...doc, status: 'paused' } };
    case 'resume':
      return status === 'paused' ? { write: { ...doc, status: 'waiting' } } : { skip: `is ${status}, not paused` };
    case 'delete':
      return FINISHED.includes(status) ? { write: { _id: doc._id, _rev: doc._rev, _deleted: true } } : { skip: `is ${status}, not finished` };
  }
}

/** Bulk actions in progress and done lately, polled by the page. */
export class BulkRuns {
  private readonly runs = new Map<string, BulkProgress>();

  constructor(private readonly log: Logger) {}

  start(read: ReadSide, request: BulkRequest, who: string): BulkProgress {
    checkRequest(request);
    const progress: BulkProgress = { id: randomBytes(8).toString('hex'), action: request.action, done: 0, skipped: {}, finished: false };
    this.runs.set(progress.id, progress);
    // Kept an hour after they end, so a page polling late still gets the counts.
    const forget = (): void => void setTimeout(() => this.runs.delete(progress.id), 3_600_000).unref();
    runBulk(read, request, progress)
      .catch((err: Error) => (progress.error = err.message))
      .finally(() => {
        progress.finished = true;
        const skipped = Object.values(progress.skipped).reduce((a, b) => a + b, 0);
        this.log.info(`dashboard: ${who} bulk ${request.action}: ${progress.done} done, ${skipped} skipped${progress.error ? `, stopped: ${progress.error}` : ''}`);
        forget();
      });
    return progress;
  }

  get(id: string): BulkProgress | undefined {
    return this.runs.get(id);
  }
}

function checkRequest(request: BulkRequest): void {
  if (!BULK_ACTIONS.includes(request.action)) throw new AfterError('E_USAGE', `action must be one of ${BULK_ACTIONS.join(', ')}`);
  if (request.ids !== undefined) {
    if (!Array.isArray(request.ids) || request.ids.length === 0 || request.ids.length > MAX_SELECTED || !request.ids.every((id) => typeof id === 'string' && id !== '' && !id.startsWith('_'))) {
      throw new AfterError('E_USAGE', `ids must be 1 to ${MAX_SELECTED} task ids`);
    }
    return;
  }
  const filter = request.filter;
  if (!filter || !(filter.status in STATUS_GROUPS)) throw new AfterError('E_USAGE', 'a bulk action names its tasks: ids, or a filter with a status');
  if (request.action === 'delete' && (typeof filter.before !== 'string' || Number.isNaN(Date.parse(filter.before)))) {
    throw new AfterError('E_USAGE', 'deleting finished tasks needs a date: those dated before it are deleted');
  }
}

async function runBulk(read: ReadSide, request: BulkRequest, progress: BulkProgress): Promise<void> {
  if (request.ids) {
    for (let i = 0; i < request.ids.length; i += PAGE) {
      const ids = request.ids.slice(i, i + PAGE);
      const docs = await readByIds(read, ids);
      const found = new Set(docs.map((doc) => doc._id));
      for (const id of ids) if (!found.has(id)) skip(progress, 'not found (deleted, or not a task)');
      await applyToDocs(read, docs, request.action, progress);
    }
    return;
  }
  let cursor: PageCursor | undefined;
  for (;;) {
    const page = await readTaskPage(read, { ...request.filter!, limit: PAGE, order: 'asc', ...(cursor ? { cursor } : {}) });
    await applyToDocs(read, page.tasks, request.action, progress);
    if (!page.next) return;
    cursor = page.next;
  }
}

async function applyToDocs(read: ReadSide, docs: TaskDoc[], action: BulkAction, progress: BulkProgress): Promise<void> {
  let current = docs;
  for (let round = 1; current.length > 0; round++) {
    const writes: TaskDoc[] = [];
    for (const doc of current) {
      const plan = planBulkWrite(doc, action);
      if ('skip' in plan) skip(progress, plan.skip);
      else writes.push(plan.write);
    }
    if (writes.length === 0) return;
    const res = await read.conn.request<Array<{ id: string; ok?: boolean; error?: string; reason?: string }>>({ method: 'POST', path: '_bulk_docs', body: { docs: writes } });
    const conflicted: string[] = [];
    for (const row of res.body) {
      if (row.ok) progress.done++;
      else if (row.error === 'conflict') conflicted.push(row.id);
      else skip(progress, `refused by the database (${row.error ?? 'error'}: ${row.reason ?? ''})`.slice(0, 120));
    }
    if (conflicted.length === 0) return;
    if (round >= CONFLICT_ROUNDS) {
      for (let i = 0; i < conflicted.length; i++) skip(progress, 'changed meanwhile, and kept changing');
      return;
    }
    current = await readByIds(read, conflicted);
  }
}

/** The tasks named, as they are now (one `_find` on the primary index); missing ones are skipped. */
async function readByIds(read: ReadSide, ids: string[]): Promise<TaskDoc[]> {
  const res = await read.conn.request<{ docs: TaskDoc[] }>({ method: 'POST', path: '_find', body: { selector: { _id: { $in: ids } }, limit: ids.length } });
  return res.body.docs.filter((doc) => typeof doc.worker === 'string');
}

function skip(progress: BulkProgress, why: string): void {
  progress.skipped[why] = (progress.skipped[why] ?? 0) + 1;
}

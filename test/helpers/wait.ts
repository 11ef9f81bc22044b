/** Wait for a condition instead of sleeping: polls, and a timeout says what and what was seen. */
import type { TaskDoc } from '../../src/types';

export interface WaitOptions {
  timeoutMs: number;
  /** @default 50 */
  intervalMs?: number;
  /** Named in the timeout error: "timed out after 5000 ms waiting for <what>". */
  what: string;
}

/**
 * Resolves with the first value of `condition` that is neither undefined nor false. A throw
 * counts as "not yet" (a server restarting, a document not written yet) and is reported as
 * the last value seen if the wait times out.
 */
export async function waitFor<T>(condition: () => Promise<T | undefined | false>, options: WaitOptions): Promise<T> {
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown = '(nothing yet)';
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err instanceof Error ? `${err.name}: ${err.message}` : err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}; last value: ${describe(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Anything a test can read tasks through (a TestDb does). */
export interface TaskReader {
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** Polls the task until its `status` is `status` (or one of them); returns the document. */
export function waitForStatus(db: TaskReader, id: string, status: string | readonly string[], timeoutMs = 10_000): Promise<TaskDoc> {
  const wanted = typeof status === 'string' ? [status] : status;
  return waitForDoc(db, id, (doc) => wanted.includes(doc.status as string), timeoutMs, `to reach status ${wanted.join(' or ')}`);
}

/** Polls the task until `accept(doc)` holds (running, and by a given instance, say); returns it. */
export function waitForDoc(db: TaskReader, id: string, accept: (doc: TaskDoc) => boolean, timeoutMs: number, what: string): Promise<TaskDoc> {
  let last: unknown = '(nothing yet)';
  return waitFor(
    async () => {
      const res = await db.request<TaskDoc>('GET', encodeURIComponent(id));
      last = res.status === 200 ? res.body : `HTTP ${res.status} ${JSON.stringify(res.body)}`;
      return res.status === 200 && accept(res.body) ? res.body : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `task ${id} ${what}` },
  ).catch((err: Error) => {
    throw new Error(`${withoutLastValue(err)}; last seen: ${describe(last)}`);
  });
}

/** Waits until every one of `ids` (tasks of `worker`) has status `status`; returns their documents. */
export function waitForAll(db: TaskReader, worker: string, ids: readonly string[], status: string, timeoutMs: number): Promise<TaskDoc[]> {
  const wanted = new Set(ids);
  let counts = '';
  return waitFor(
    async () => {
      const docs = (await tasksOf(db, worker)).filter((doc) => wanted.has(doc._id));
      const byStatus = new Map<string, number>();
      for (const doc of docs) byStatus.set(String(doc.status), (byStatus.get(String(doc.status)) ?? 0) + 1);
      counts = JSON.stringify(Object.fromEntries(byStatus));
      return docs.length === wanted.size && docs.every((doc) => doc.status === status) ? docs : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `${ids.length} tasks of ${worker} to be ${status}` },
  ).catch((err: Error) => {
    throw new Error(`${withoutLastValue(err)}; statuses seen: ${counts}`);
  });
}

/** Every task document of `worker`. */
async function tasksOf(db: TaskReader, worker: string): Promise<TaskDoc[]> {
  const res = await db.request<{ rows: Array<{ doc?: TaskDoc }> }>('GET', '_all_docs?include_docs=true');
  if (res.status !== 200) throw new Error(`_all_docs: HTTP ${res.status}`);
  return res.body.rows.flatMap((row) => (row.doc && row.doc.worker === worker ? [row.doc] : []));
}

/** A timeout of waitFor() without its generic last value, for a caller that names a better one. */
function withoutLastValue(err: Error): string {
  return err.message.replace(/; last value: .*$/s, '');
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
  } catch {
    return String(value);
  }
}

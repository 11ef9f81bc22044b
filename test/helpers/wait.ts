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

/** Anything a test can read a task through (a TestDb does). */
export interface TaskReader {
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** Polls the task until its `status` is `status` (or one of them); returns the document. */
export function waitForStatus(db: TaskReader, id: string, status: string | readonly string[], timeoutMs = 10_000): Promise<TaskDoc> {
  const wanted = typeof status === 'string' ? [status] : status;
  let last: unknown;
  return waitFor(
    async () => {
      const res = await db.request<TaskDoc>('GET', encodeURIComponent(id));
      last = res.status === 200 ? res.body : `HTTP ${res.status} ${JSON.stringify(res.body)}`;
      return res.status === 200 && wanted.includes(res.body.status as string) ? res.body : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `task ${id} to reach status ${wanted.join(' or ')}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message.replace(/; last value: .*$/s, '')}; last seen: ${describe(last)}`);
  });
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

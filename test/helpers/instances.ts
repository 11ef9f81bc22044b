/**
 * Worker instances as a user starts them (`after start <name>` as real processes), tasks posted
 * over HTTP, and what the `records` fixture job wrote: the pieces of the many-instances,
 * crash, outage and retry tests.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { REPO_ROOT, spawnCli, type ChildHandle } from './cli';
import type { TestDb } from './db';
import { waitFor } from './wait';

export const FIXTURE_JOBS = path.join(REPO_ROOT, 'test', 'fixtures', 'jobs');

export const iso = (ms: number): string => new Date(ms).toISOString();

export interface WorkerProcess {
  child: ChildHandle;
  /** The instance id it printed when ready (what `lease.instance` and `last_run.instance` hold). */
  instance: string;
}

/** `after start <name> --jobs <jobs> [...extra]` (test/fixtures/jobs by default), resolved once it is ready. */
export async function startInstance(
  db: TestDb,
  name: string,
  recordFile: string,
  extra: string[] = [],
  jobs: string = FIXTURE_JOBS,
): Promise<WorkerProcess> {
  const child = spawnCli(['start', name, '--jobs', jobs, ...extra], {
    env: { ...db.env, AFTER_TEST_RECORD_FILE: recordFile },
  });
  const ready = await child.waitForOutput(new RegExp(`worker ${name} ready \\(instance (\\S+),`), 20_000);
  return { child, instance: ready[1]! };
}

/** SIGTERM every instance still running and wait for it to exit. */
export async function stopInstances(instances: ReadonlyArray<WorkerProcess | undefined>): Promise<void> {
  await Promise.all(
    instances.map(async (w) => {
      if (!w?.child.running) return;
      w.child.kill('SIGTERM');
      await w.child.exited;
    }),
  );
}

/**
 * Create tasks in one `_bulk_docs` (how a user would load many); returns their ids in the order
 * given. Each gets its `_id` here: pouchdb-server does not answer `_bulk_docs` in request order.
 */
export async function postTasks(db: TestDb, tasks: Array<Record<string, unknown>>): Promise<string[]> {
  const docs = tasks.map((task) => ({ _id: `task-${randomBytes(8).toString('hex')}`, ...task }));
  const res = await db.request<Array<{ id: string; ok?: boolean; error?: string }>>('POST', '_bulk_docs', { docs });
  if (res.status !== 201 || res.body.some((row) => !row.ok)) throw new Error(`_bulk_docs failed: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  return docs.map((doc) => doc._id as string);
}

/** Every task document of `worker`. */
export async function tasksOf(db: TestDb, worker: string): Promise<TaskDoc[]> {
  const res = await db.request<{ rows: Array<{ doc?: TaskDoc }> }>('GET', '_all_docs?include_docs=true');
  if (res.status !== 200) throw new Error(`_all_docs: HTTP ${res.status}`);
  return res.body.rows.flatMap((row) => (row.doc && row.doc.worker === worker ? [row.doc] : []));
}

/** Waits until every one of `ids` has status `status`; returns their documents. */
export async function waitForAll(db: TestDb, worker: string, ids: readonly string[], status: string, timeoutMs: number): Promise<TaskDoc[]> {
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
    throw new Error(`${err.message.replace(/; last value: .*$/s, '')}; statuses seen: ${counts}`);
  });
}

/** Lines the `records` fixture job wrote: `<task id> <ISO start time>`. */
export function readRecords(file: string): Array<{ id: string; startedAt: number }> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, at] = line.split(' ');
      return { id: id!, startedAt: Date.parse(at!) };
    });
}

/** The most runs that overlapped at any moment; a run ending at t does not overlap one starting at t. */
export function maxOverlap(runs: ReadonlyArray<{ start: number; end: number }>): number {
  const edges = runs.flatMap((r) => [
    { at: r.start, delta: 1 },
    { at: r.end, delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const edge of edges) {
    now += edge.delta;
    most = Math.max(most, now);
  }
  return most;
}

/** Polls the task until `accept(doc)` holds (e.g. running, and by a given instance); returns it. */
export async function waitForDoc(db: TestDb, id: string, accept: (doc: TaskDoc) => boolean, timeoutMs: number, what: string): Promise<TaskDoc> {
  let last: unknown = '(nothing yet)';
  return waitFor(
    async () => {
      const res = await db.request<TaskDoc>('GET', encodeURIComponent(id));
      last = res.body;
      return res.status === 200 && accept(res.body) ? res.body : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `task ${id}: ${what}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message.replace(/; last value: .*$/s, '')}; last seen: ${JSON.stringify(last).slice(0, 1500)}`);
  });
}

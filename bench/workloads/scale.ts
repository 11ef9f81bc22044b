/**
 * W3 scale: a million pending tasks of one worker spread over a year, loaded with
 * `_bulk_docs`. Figures: time from `after start` until the worker logs "worker bench ready"
 * (window loaded, feed followed) and its RSS a minute later.
 *
 * CouchDB and pouchdb-server build an index at its first query after documents arrive, not
 * when they are written. An operator who loads tasks and then starts a worker pays that
 * build once; the bench pays it with a warm-up of the worker's own queries, times it, and
 * reports the first start both without and with it.
 * Raw = the database answering the worker's start-up queries itself (warm).
 */
import { benchTask, rssBytes, sleep, startWorker, WORKER_NAME, type BenchDb, type BenchServer } from '../harness';
import { ratioOf, seconds, type Row } from '../report';
import type { WorkloadOptions } from './options';

const YEAR_MS = 365 * 24 * 3600_000;
const LOAD_BATCH = 10_000;
/** Batches in flight while loading: the server parses one while the next one travels. */
const LOAD_PARALLEL = 2;
/** As the worker's follower: an ISO date with an offset may be up to 14 h earlier than its text. */
const ZONE_MARGIN_MS = 14 * 3600_000;
const PAGE_SIZE = 1000;

export async function runScale(
  server: BenchServer,
  options: WorkloadOptions & { tasks: number; rssAfterMs: number; onProgress(line: string): void },
): Promise<Row[]> {
  const { tasks, concurrency } = options;
  const db = await server.newDb('w3');
  try {
    const empty = await startAndMeasure(db, concurrency, 2000);

    const loadStart = Date.now();
    await load(db, tasks, options.onProgress);
    const loadMs = Date.now() - loadStart;
    options.onProgress(`W3: ${tasks} tasks loaded in ${seconds(loadMs)}; warming the indexes up`);

    const warmUpMs = await windowQueriesMs(db);
    const rawMs = await windowQueriesMs(db);
    options.onProgress(`W3: index warm-up ${seconds(warmUpMs)}; starting the worker (RSS read after ${options.rssAfterMs / 1000} s)`);
    const loaded = await startAndMeasure(db, concurrency, options.rssAfterMs, options.profileDir);

    const name = 'W3 scale';
    const mb = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MB`;
    return [
      { workload: name, figure: `load ${tasks} tasks (_bulk_docs of ${LOAD_BATCH})`, value: `${seconds(loadMs)} (${Math.round((tasks / loadMs) * 1000)} docs/s)` },
      { workload: name, figure: 'first index build (warm-up queries)', value: seconds(warmUpMs) },
      { workload: name, figure: 'ready after start (indexes warm)', value: seconds(loaded.readyMs), raw: seconds(rawMs), ratio: ratioOf(loaded.readyMs, rawMs), target: '< 10 s', met: loaded.readyMs < 10_000 },
      { workload: name, figure: 'ready after start incl. index build', value: seconds(loaded.readyMs + warmUpMs), raw: seconds(rawMs + warmUpMs), ratio: ratioOf(loaded.readyMs + warmUpMs, rawMs + warmUpMs) },
      { workload: name, figure: `ready after start, empty database`, value: seconds(empty.readyMs) },
      { workload: name, figure: `worker RSS ${options.rssAfterMs / 1000} s after ready (raw: empty database)`, value: mb(loaded.rss), raw: mb(empty.rss), ratio: ratioOf(loaded.rss, empty.rss), target: '< 150 MB', met: loaded.rss < 150 * 1024 * 1024 },
    ];
  } finally {
    await db.destroy();
  }
}

async function startAndMeasure(db: BenchDb, concurrency: number, rssAfterMs: number, profileDir?: string): Promise<{ readyMs: number; rss: number }> {
  const worker = startWorker(db, { concurrency, profileDir });
  try {
    const readyAt = await worker.ready;
    await sleep(rssAfterMs);
    return { readyMs: readyAt - worker.spawnedAtMs, rss: rssBytes(worker.pid) };
  } finally {
    await worker.stop();
  }
}

async function load(db: BenchDb, tasks: number, onProgress: (line: string) => void): Promise<void> {
  const now = Date.now();
  let next = 0;
  let reported = 0;
  const loader = async (): Promise<void> => {
    while (next < tasks) {
      const first = next;
      next = Math.min(tasks, next + LOAD_BATCH);
      const docs = [];
      // Beyond the first few minutes: the year ahead, as a long-lived schedule looks.
      for (let i = first; i < next; i++) docs.push(benchTask(`w3-${String(i).padStart(8, '0')}`, now + 600_000 + Math.floor(Math.random() * YEAR_MS)));
      await db.bulkDocs(docs);
      if (next - reported >= tasks / 10) {
        reported = next;
        onProgress(`W3: ${next} of ${tasks} loaded`);
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_PARALLEL }, loader));
}

/** The queries a starting worker makes (its follower's window and lease sweep), one after another. */
async function windowQueriesMs(db: BenchDb): Promise<number> {
  const start = Date.now();
  const windowEnd = new Date(Date.now() + db.config.worker.horizon_ms + ZONE_MARGIN_MS).toISOString();
  const byDate = (status: string, dateAtMost: string): object => ({
    selector: { worker: WORKER_NAME, status, date: { $lte: dateAtMost } },
    sort: [{ worker: 'asc' }, { status: 'asc' }, { date: 'asc' }],
    use_index: ['after-worker-status-date', 'worker-status-date'],
    limit: PAGE_SIZE,
  });
  const byLease = (status: string): object => ({
    selector: { worker: WORKER_NAME, status, 'lease.expires_at': { $lt: new Date().toISOString() } },
    sort: [{ worker: 'asc' }, { status: 'asc' }, { 'lease.expires_at': 'asc' }],
    use_index: ['after-worker-status-lease', 'worker-status-lease'],
    limit: PAGE_SIZE,
  });
  await db.request('POST', '_find', byDate('cancel', '9999-12-31T23:59:59.999Z'));
  for (const status of ['waiting', 'reschedule', 'scheduled']) await findAllPages(db, byDate(status, windowEnd));
  // The worker's query for tasks no Mango index holds (no status, malformed), then the
  // counts view `after status` reads: both views of _design/after, built at first query.
  const worker = encodeURIComponent(JSON.stringify(WORKER_NAME));
  await db.request('GET', `_design/after/_view/unreachable_by_worker?key=${worker}&include_docs=true&limit=${PAGE_SIZE}`);
  await db.request('GET', '_design/after/_view/by_worker_status?group=true');
  for (const status of ['running', 'scheduled', 'cancel']) await db.request('POST', '_find', byLease(status));
  return Date.now() - start;
}

/** pouchdb-server's `_find` gives no bookmark: page with `skip`, as the worker's store does there. */
async function findAllPages(db: BenchDb, query: object): Promise<void> {
  for (let skip = 0; ; skip += PAGE_SIZE) {
    const page = await db.request<{ docs: unknown[] }>('POST', '_find', { ...query, skip });
    if (page.docs.length < PAGE_SIZE) return;
  }
}

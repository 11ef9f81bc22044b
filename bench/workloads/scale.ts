/**
 * W3 scale: N pending tasks of one worker spread over the coming year (a million for the full
 * figure: BENCH_W3=1000000), loaded with large `_bulk_docs` in parallel. Figures: the load,
 * the worker's first start on them (spawn → "worker bench ready"; its own queries build the
 * indexes they need, as an operator's first start after a bulk load does), a second start with
 * the indexes built (the < 10 s target) and its RSS a minute after ready (the < 150 MB target).
 *
 * The tasks are loaded into the fresh database before `after init` runs on it: a database
 * whose design document has a JavaScript `validate_doc_update` (After's before issue 12) sends
 * every document of the load through CouchDB's `couchjs`, one round trip each (about 45 minutes
 * for a million on a 2-core machine). What that costs is measured on its own, on a sample of
 * 10,000 loaded after `after init` ("load rate after after init").
 *
 * Raw = the same worker on an empty database (initialised the same way): what starting costs
 * without the tasks, and its RSS.
 * The queries a worker makes and the indexes they use are After's to choose (src/store/), so
 * the bench does not repeat them: it starts the worker and times it.
 */
import { benchTask, rssBytes, sleep, startWorker, type BenchDb, type BenchServer } from '../harness';
import { ratioOf, seconds, type Row } from '../report';
import type { WorkloadOptions } from './options';

const YEAR_MS = 365 * 24 * 3600_000;
/** Beyond the first minutes: the year ahead, as a long-lived schedule looks. */
const FIRST_DATE_AFTER_MS = 600_000;
const LOAD_SAMPLE = 10_000;
/** The first start may build indexes over every task: minutes for a million. */
const FIRST_START_TIMEOUT_MS = 3_600_000;

export interface LoadSettings {
  /** Documents per `_bulk_docs`. */
  batch: number;
  /** `_bulk_docs` in flight at once. */
  parallel: number;
}

/**
 * pouchdb-server writes in one JavaScript thread: two batches of 10,000 keep it busy (one is
 * parsed while the next travels). CouchDB writes each shard in its own Erlang process: four
 * batches of 5,000 load a million in about a minute here (measured: 10,000 × 4 gave 12,000
 * documents/s, 5,000 × 2 gave 22,000 on a bare database).
 */
export function loadSettings(server: BenchServer): LoadSettings {
  return server.kind === 'embedded' ? { batch: 10_000, parallel: 2 } : { batch: 5_000, parallel: 4 };
}

export async function runScale(
  server: BenchServer,
  options: WorkloadOptions & { tasks: number; rssAfterMs: number; onProgress(line: string): void },
): Promise<Row[]> {
  const { tasks, concurrency } = options;
  const settings = loadSettings(server);
  const name = 'W3 scale';
  const mb = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MB`;

  const sampleSize = Math.min(tasks, LOAD_SAMPLE);
  const sampleRate = await loadRateAfterInit(server, sampleSize, settings);
  options.onProgress(`W3: ${sampleSize} tasks into a database after 'after init': ${Math.round(sampleRate)} docs/s`);

  const empty = await server.newDb('w3empty');
  let idle: { readyMs: number; rss: number };
  try {
    idle = await startAndMeasure(empty, concurrency, options.rssAfterMs);
  } finally {
    await empty.destroy();
  }

  const db = await server.newDb('w3', { init: 'bare' });
  try {
    const loadStart = Date.now();
    await load(db, tasks, settings, (line) => options.onProgress(`W3: ${line}`));
    const loadMs = Date.now() - loadStart;
    options.onProgress(`W3: ${tasks} tasks loaded in ${seconds(loadMs)}; 'after init', then the worker's first start`);
    await db.init();

    const first = await startAndMeasure(db, concurrency, 0, options.profileDir, FIRST_START_TIMEOUT_MS);
    options.onProgress(`W3: first start ready in ${seconds(first.readyMs)}; second start (RSS read ${options.rssAfterMs / 1000} s after ready)`);
    const warm = await startAndMeasure(db, concurrency, options.rssAfterMs, options.profileDir);

    return [
      {
        workload: name,
        figure: `load ${tasks} tasks (_bulk_docs of ${settings.batch}, ${settings.parallel} at once, before after init)`,
        value: `${seconds(loadMs)} (${Math.round((tasks / loadMs) * 1000)} docs/s)`,
      },
      { workload: name, figure: `load rate after after init (${sampleSize} tasks)`, value: `${Math.round(sampleRate)} docs/s` },
      { workload: name, figure: 'ready after the first start (builds its indexes; raw: empty database)', value: seconds(first.readyMs), raw: seconds(idle.readyMs), ratio: ratioOf(first.readyMs, idle.readyMs) },
      {
        workload: name,
        figure: 'ready after start, indexes built (raw: empty database)',
        value: seconds(warm.readyMs),
        raw: seconds(idle.readyMs),
        ratio: ratioOf(warm.readyMs, idle.readyMs),
        target: '< 10 s',
        met: warm.readyMs < 10_000,
      },
      {
        workload: name,
        figure: `worker RSS ${options.rssAfterMs / 1000} s after ready (raw: empty database)`,
        value: mb(warm.rss),
        raw: mb(idle.rss),
        ratio: ratioOf(warm.rss, idle.rss),
        target: '< 150 MB',
        met: warm.rss < 150 * 1024 * 1024,
      },
    ];
  } finally {
    await db.destroy();
  }
}

async function startAndMeasure(db: BenchDb, concurrency: number, rssAfterMs: number, profileDir?: string, readyTimeoutMs = 120_000): Promise<{ readyMs: number; rss: number }> {
  const worker = startWorker(db, { concurrency, profileDir });
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the worker was not ready ${seconds(readyTimeoutMs)} after its start: ${worker.tail()}`)), readyTimeoutMs);
    });
    const readyAt = await Promise.race([worker.ready, timeout]).finally(() => clearTimeout(timer));
    await sleep(rssAfterMs);
    return { readyMs: readyAt - worker.spawnedAtMs, rss: rssBytes(worker.pid) };
  } finally {
    await worker.stop();
  }
}

/** Documents per second into a database as `after init` leaves it (its validator included, if any). */
async function loadRateAfterInit(server: BenchServer, tasks: number, settings: LoadSettings): Promise<number> {
  const db = await server.newDb('w3sample');
  try {
    const start = Date.now();
    await load(db, tasks, settings, () => undefined);
    return (tasks / (Date.now() - start)) * 1000;
  } finally {
    await db.destroy();
  }
}

/** W3's loader: `tasks` documents (`taskOf`: W3's own pending tasks by default) in parallel `_bulk_docs`. */
export async function load(
  db: BenchDb,
  tasks: number,
  settings: LoadSettings,
  onProgress: (line: string) => void,
  taskOf: (i: number, nowMs: number) => object = (i, nowMs) => benchTask(`w3-${String(i).padStart(8, '0')}`, nowMs + FIRST_DATE_AFTER_MS + Math.floor(Math.random() * YEAR_MS)),
): Promise<void> {
  const now = Date.now();
  let next = 0;
  let reported = 0;
  const loader = async (): Promise<void> => {
    while (next < tasks) {
      const first = next;
      next = Math.min(tasks, next + settings.batch);
      const docs = [];
      for (let i = first; i < next; i++) docs.push(taskOf(i, now));
      await db.bulkDocs(docs);
      if (next - reported >= tasks / 10) {
        reported = next;
        onProgress(`${next} of ${tasks} loaded`);
      }
    }
  };
  await Promise.all(Array.from({ length: settings.parallel }, loader));
}

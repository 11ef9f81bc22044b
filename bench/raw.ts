/**
 * The database's own speed, measured in the same run as After's figures, on a database with no
 * design document and no index (`init: 'bare'`), with the leanest client (`fetch`):
 *
 * - a burst (W1, W1b, W5): the physical limit of running N tasks is two `_bulk_docs` updates of
 *   the same N documents — the claim (`running` with a lease) and the finish (`done` with the
 *   run recorded);
 * - a timer and a write (W2, W4): the least lateness a scheduler that claims at the date pays is
 *   its timer's lateness plus one claim write; `RawScheduler` is that loop and nothing more.
 */
import type { TaskDoc } from '../src/types';
import { benchTask, sleep, type BenchDb, type BenchServer } from './harness';
import type { BulkRow } from './server';
import { median, summarize, type Summary } from './stats';

const BURST_ROUNDS = 3;

export interface RawBurst {
  /** Median of the claim write of all the documents in one `_bulk_docs`: the start lateness a burst cannot beat. */
  claimMs: number;
  /** Median of both writes: the drain a burst cannot beat. */
  drainMs: number;
  /** How the writes went: through one node, or split over every node of a cluster at once. */
  through: string;
}

const burstCache = new Map<string, Promise<RawBurst>>();

export interface RawBurstOptions {
  /** On a cluster, each node takes an equal share of each update, all at once. */
  spread?: boolean;
  /**
   * `after`: the same writes in a database after `after init`, to show what its design
   * document costs (W1's extra row); the raw figure itself is always `bare`.
   */
  init?: 'bare' | 'after';
}

/**
 * Two `_bulk_docs` updates (claim, finish) of the same `tasks` documents, median of 3 rounds,
 * measured once per server, size and kind in a run and shared by the workloads that need it.
 */
export function rawBurst(server: BenchServer, tasks: number, options: RawBurstOptions = {}): Promise<RawBurst> {
  const spread = options.spread ?? false;
  const init = options.init ?? 'bare';
  const key = `${tasks}:${spread}:${init}`;
  let cached = burstCache.get(key);
  if (!cached) {
    cached = measureBurst(server, tasks, spread, init);
    cached.catch(() => burstCache.delete(key));
    burstCache.set(key, cached);
  }
  return cached;
}

async function measureBurst(server: BenchServer, tasks: number, spread: boolean, init: 'bare' | 'after'): Promise<RawBurst> {
  const db = await server.newDb(init === 'bare' ? 'raw' : 'rawinit', { init });
  try {
    const now = Date.now();
    let docs: TaskDoc[] = Array.from({ length: tasks }, (_, i) => benchTask(`raw-${String(i).padStart(6, '0')}`, now));
    docs = withRevs(docs, await db.bulkDocs(docs));
    const shares = spread ? db.nodes.length : 1;
    const write = async (batch: TaskDoc[]): Promise<TaskDoc[]> => {
      const parts = Array.from({ length: shares }, (_, node) => batch.filter((_, i) => i % shares === node));
      const rows = await Promise.all(parts.map((part, node) => db.bulkDocs(part, node)));
      return withRevs(batch, rows.flat());
    };
    const claims: number[] = [];
    const drains: number[] = [];
    for (let round = 0; round < BURST_ROUNDS; round++) {
      await sleep(200);
      const start = Date.now();
      const lease = { instance: 'raw:1:abcdef', expires_at: new Date(start + 30_000).toISOString() };
      docs = await write(docs.map((doc) => ({ ...doc, status: 'running', lease })));
      claims.push(Date.now() - start);
      const finishedAt = new Date().toISOString();
      const lastRun = { started_at: finishedAt, finished_at: finishedAt, duration_ms: 0, worker: 'bench', instance: lease.instance };
      const done = docs.map(({ lease: _lease, ...doc }) => ({
        ...doc,
        status: 'done',
        executions: round + 1,
        last_run: lastRun,
        result: { started_at_ms: start, date: doc.date },
        history: [{ ...lastRun, status: 'done' }],
      })) as TaskDoc[];
      docs = await write(done);
      drains.push(Date.now() - start);
      docs = docs.map((doc) => ({ ...doc, status: 'waiting' }));
    }
    return { claimMs: median(claims), drainMs: median(drains), through: shares > 1 ? `split over ${shares} nodes` : server.kind === 'cluster' ? 'through one node' : 'one server' };
  } finally {
    await db.destroy();
  }
}

export function withRevs(docs: TaskDoc[], rows: readonly BulkRow[]): TaskDoc[] {
  // pouchdb-server does not answer _bulk_docs in request order: match rows by id.
  const revs = new Map(rows.map((row) => [row.id, row.rev]));
  return docs.map((doc) => ({ ...doc, _rev: revs.get(doc._id) }));
}

/**
 * The least a scheduler does: a timer to each date, then the claim (one `_bulk_docs` of the
 * documents due at that very millisecond to `running`) and the finish (to `done`). Lateness =
 * the claim's answer − the date: a job may not start before its claim is won.
 */
export class RawScheduler {
  private readonly lateness: number[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly db: BenchDb) {}

  /** Schedules documents already written (with their `_rev`). */
  add(docs: readonly TaskDoc[]): void {
    const byDate = new Map<number, TaskDoc[]>();
    for (const doc of docs) {
      const dateMs = Date.parse(String(doc.date));
      byDate.set(dateMs, [...(byDate.get(dateMs) ?? []), doc]);
    }
    for (const [dateMs, due] of byDate) {
      const run = new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, dateMs - Date.now()))).then(() => this.run(dateMs, due));
      this.pending.add(run);
      void run.finally(() => this.pending.delete(run));
    }
  }

  private async run(dateMs: number, due: readonly TaskDoc[]): Promise<void> {
    const lease = { instance: 'raw:1:abcdef', expires_at: new Date(Date.now() + 30_000).toISOString() };
    const claimed = due.map((doc) => ({ ...doc, status: 'running', lease }));
    const rows = await this.db.bulkDocs(claimed);
    const answeredAt = Date.now();
    for (let i = 0; i < due.length; i++) this.lateness.push(answeredAt - dateMs);
    const finished = withRevs(
      claimed.map(({ lease: _lease, ...doc }) => ({ ...doc, status: 'done', result: { date: doc.date } }) as TaskDoc),
      rows,
    );
    await this.db.bulkDocs(finished);
  }

  /** Waits for every run scheduled so far; the claim lateness of each task. */
  async finished(): Promise<Summary> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    return summarize(this.lateness);
  }
}

/**
 * W2's raw: `tasks` dates at random over `spreadMs`, the first `leadMs` after their insert,
 * run by `RawScheduler` on a bare database.
 */
export async function rawTimerLateness(server: BenchServer, tasks: number, spreadMs: number, leadMs: number): Promise<Summary> {
  const db = await server.newDb('raw', { init: 'bare' });
  try {
    const now = Date.now();
    const docs = Array.from({ length: tasks }, (_, i) => benchTask(`raw-${String(i).padStart(6, '0')}`, now + leadMs + Math.floor(Math.random() * spreadMs)));
    const scheduler = new RawScheduler(db);
    scheduler.add(withRevs(docs, await db.bulkDocs(docs)));
    return await scheduler.finished();
  } finally {
    await db.destroy();
  }
}

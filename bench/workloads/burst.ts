/**
 * W1 burst: 3,000 tasks due now arrive at once for one worker that is already following the
 * feed. Drain = from the end of the insert until the worker has logged every task `done`.
 * Raw = what the database needs at least for the same work: two `_bulk_docs` of all the
 * documents (to `running` with a lease, then to `done` with the run recorded).
 */
import { benchTask, sleep, startWorker, type BenchDb, type BenchServer } from '../harness';
import { ms, ratioOf, seconds, type Row } from '../report';
import { median } from '../stats';
import type { TaskDoc } from '../../src/types';
import type { WorkloadOptions } from './options';

const RAW_ROUNDS = 3;
const TARGET_RATIO = 2.0;

export async function runBurst(server: BenchServer, options: WorkloadOptions & { tasks: number }): Promise<Row[]> {
  const { tasks, concurrency } = options;
  const rawMs = await rawDrainMs(server, tasks);

  const db = await server.newDb('w1');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let drainMs: number;
  let insertMs: number;
  try {
    await worker.ready;
    const now = Date.now();
    const docs = Array.from({ length: tasks }, (_, i) => benchTask(`w1-${String(i).padStart(6, '0')}`, now));
    const insertStart = Date.now();
    await db.bulkDocs(docs);
    const lastInsertAt = Date.now();
    insertMs = lastInsertAt - insertStart;
    const lastDoneAt = await worker.waitForDone(tasks, 120_000);
    drainMs = lastDoneAt - lastInsertAt;
    await expectAllDone(db, tasks);
  } finally {
    lag = await worker.stop();
    await db.destroy();
  }

  const ratio = ratioOf(drainMs, rawMs);
  return [
    { workload: 'W1 burst', figure: `drain ${tasks} tasks (concurrency ${concurrency})`, value: seconds(drainMs), raw: seconds(rawMs), ratio, target: `≤ ${TARGET_RATIO.toFixed(1)}× raw`, met: ratio !== undefined && ratio <= TARGET_RATIO },
    { workload: 'W1 burst', figure: 'throughput', value: `${Math.round((tasks / drainMs) * 1000)} tasks/s`, raw: `${Math.round((tasks / rawMs) * 1000)} tasks/s` },
    { workload: 'W1 burst', figure: `insert of the ${tasks} tasks (one _bulk_docs)`, value: seconds(insertMs) },
    ...(lag ? [{ workload: 'W1 burst', figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

/** Median over a few rounds of the two `_bulk_docs` the work needs, on a database of its own. */
async function rawDrainMs(server: BenchServer, tasks: number): Promise<number> {
  const db = await server.newDb('w1raw');
  try {
    const now = Date.now();
    let docs: TaskDoc[] = Array.from({ length: tasks }, (_, i) => benchTask(`raw-${String(i).padStart(6, '0')}`, now));
    docs = withRevs(docs, await db.bulkDocs(docs));
    const rounds: number[] = [];
    for (let round = 0; round < RAW_ROUNDS; round++) {
      await sleep(200);
      const start = Date.now();
      const lease = { instance: 'raw:1:abcdef', expires_at: new Date(start + 30_000).toISOString() };
      const running = docs.map((doc) => ({ ...doc, status: 'running', lease }));
      docs = withRevs(running, await db.bulkDocs(running));
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
      docs = withRevs(done, await db.bulkDocs(done));
      rounds.push(Date.now() - start);
      docs = docs.map((doc) => ({ ...doc, status: 'waiting' }));
    }
    return median(rounds);
  } finally {
    await db.destroy();
  }
}

function withRevs(docs: TaskDoc[], rows: ReadonlyArray<{ id?: string; rev?: string }>): TaskDoc[] {
  // pouchdb-server does not answer _bulk_docs in request order: match rows by id.
  const revs = new Map(rows.map((row) => [row.id, row.rev]));
  return docs.map((doc) => ({ ...doc, _rev: revs.get(doc._id) }));
}

export async function expectAllDone(db: BenchDb, tasks: number): Promise<void> {
  const counts = await db.countsByStatus();
  if ((counts.done ?? 0) !== tasks) throw new Error(`expected ${tasks} tasks done, the database says ${JSON.stringify(counts)}`);
}

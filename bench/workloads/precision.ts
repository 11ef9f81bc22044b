/**
 * W2 precision: 600 tasks at random millisecond dates over the next 20 s, inserted at once
 * while the worker follows the feed. Lateness is measured inside the job.
 * Raw = latency of a one-document `_bulk_docs` on the same server: the worker must win its
 * claim write (`running`) before it may start a job, so that is the least lateness possible.
 */
import { benchTask, sleep, startWorker, type BenchServer } from '../harness';
import { ms, ratioOf, type Row } from '../report';
import { summarize } from '../stats';
import { expectAllDone } from './burst';
import { latenessOf } from './lateness';
import type { WorkloadOptions } from './options';

/** Dates start this far after the insert, so the insert itself cannot make a task late. */
const FIRST_DATE_AFTER_MS = 1000;
const RAW_WRITES = 100;

export async function runPrecision(server: BenchServer, options: WorkloadOptions & { tasks: number; spreadMs: number }): Promise<Row[]> {
  const { tasks, spreadMs, concurrency } = options;
  const db = await server.newDb('w2');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let raw;
  try {
    raw = await oneDocWriteLatency(db);
    await worker.ready;
    const now = Date.now();
    const docs = Array.from({ length: tasks }, (_, i) =>
      benchTask(`w2-${String(i).padStart(6, '0')}`, now + FIRST_DATE_AFTER_MS + Math.floor(Math.random() * spreadMs)),
    );
    await db.bulkDocs(docs);
    await worker.waitForDone(tasks, spreadMs + 60_000);
    await expectAllDone(db, tasks);
  } finally {
    lag = await worker.stop();
  }
  const late = await latenessOf(db, 'w2-');
  await db.destroy();

  const name = 'W2 precision';
  return [
    { workload: name, figure: `lateness p50 (${tasks} tasks over ${spreadMs / 1000} s)`, value: ms(late.p50), raw: ms(raw.p50), ratio: ratioOf(late.p50, raw.p50) },
    { workload: name, figure: 'lateness p99', value: ms(late.p99), raw: ms(raw.p99), ratio: ratioOf(late.p99, raw.p99), target: '≤ 25 ms', met: late.p99 <= 25 },
    { workload: name, figure: 'lateness max', value: ms(late.max), raw: ms(raw.max), ratio: ratioOf(late.max, raw.max), target: '≤ 100 ms', met: late.max <= 100 },
    { workload: name, figure: 'started early', value: String(late.early), target: '0', met: late.early === 0 && late.missing === 0 },
    ...(lag ? [{ workload: name, figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

/** Sequential one-document `_bulk_docs` writes, a little apart, as a claim is written. */
async function oneDocWriteLatency(db: { bulkDocs(docs: object[]): Promise<unknown> }): Promise<ReturnType<typeof summarize>> {
  const latencies: number[] = [];
  for (let i = 0; i < RAW_WRITES; i++) {
    const doc = { _id: `raw-${i}`, worker: 'nobody', status: 'running', date: new Date().toISOString(), job: { name: 'stamp' } };
    const start = performance.now();
    await db.bulkDocs([doc]);
    latencies.push(performance.now() - start);
    await sleep(10);
  }
  return summarize(latencies);
}

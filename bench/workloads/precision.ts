/**
 * W2 precision: 600 tasks at random millisecond dates over the next 20 s, inserted at once
 * while the worker follows the feed. Lateness is measured inside the job.
 * Raw = the lateness of the least scheduler there is (raw.ts `RawScheduler`: a timer to each
 * date, then the claim write, which must be won before a job may start), for 200 tasks at
 * random dates over 5 s on a database with no design document.
 */
import { benchTask, startWorker, waitForDrain, type BenchServer, type Drain } from '../harness';
import { rawTimerLateness } from '../raw';
import { ms, ratioOf, type Row } from '../report';
import { expectAllDone } from './burst';
import { latenessOf } from './lateness';
import type { WorkloadOptions } from './options';

/** Dates start this far after the insert, so the insert itself cannot make a task late. */
const FIRST_DATE_AFTER_MS = 1000;
const RAW_TASKS = 200;
const RAW_SPREAD_MS = 5000;

export async function runPrecision(server: BenchServer, options: WorkloadOptions & { tasks: number; spreadMs: number }): Promise<Row[]> {
  const { tasks, spreadMs, concurrency } = options;
  const raw = await rawTimerLateness(server, RAW_TASKS, RAW_SPREAD_MS, FIRST_DATE_AFTER_MS);
  const db = await server.newDb('w2');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let drain: Drain;
  let late;
  try {
    try {
      await worker.ready;
      const now = Date.now();
      const docs = Array.from({ length: tasks }, (_, i) =>
        benchTask(`w2-${String(i).padStart(6, '0')}`, now + FIRST_DATE_AFTER_MS + Math.floor(Math.random() * spreadMs)),
      );
      await db.bulkDocs(docs);
      drain = await waitForDrain(worker, tasks, spreadMs + 60_000);
      if (drain.complete) await expectAllDone(db, tasks);
    } finally {
      lag = await worker.stop();
    }
    late = await latenessOf(db, 'w2-');
  } finally {
    await db.destroy();
  }

  const name = 'W2 precision';
  return [
    { workload: name, figure: `lateness p50 (${tasks} tasks over ${spreadMs / 1000} s)`, value: ms(late.p50), raw: ms(raw.p50), ratio: ratioOf(late.p50, raw.p50) },
    { workload: name, figure: 'lateness p99', value: ms(late.p99), raw: ms(raw.p99), ratio: ratioOf(late.p99, raw.p99), target: '≤ 10 ms', met: late.p99 <= 10 },
    { workload: name, figure: 'lateness max', value: ms(late.max), raw: ms(raw.max), ratio: ratioOf(late.max, raw.max), target: '≤ 100 ms', met: late.max <= 100 },
    { workload: name, figure: 'started early', value: String(late.early), target: '0', met: late.early === 0 && late.missing === 0 },
    ...(drain.complete ? [] : [{ workload: name, figure: 'not run 60 s after the last date', value: `${tasks - drain.done} of ${tasks}`, target: '0', met: false }]),
    ...(lag ? [{ workload: name, figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

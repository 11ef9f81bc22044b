/**
 * W4 steady: tasks arrive at 200 per second for 60 s, each due 1 s after it was created, in
 * small `_bulk_docs` every 50 ms (as a busy application would post them).
 * Raw = the lateness of the least scheduler there is (raw.ts `RawScheduler`: a timer to each
 * date, one claim write of the tasks due at that millisecond, one finish write) under the same
 * arrivals for up to 30 s, on a database with no design document.
 * CPU is read from /proc/<pid>/stat of the worker (and of the database with its child
 * processes, CouchDB's couchjs included, when it runs on this machine) over the arrivals.
 */
import type { TaskDoc } from '../../src/types';
import { benchTask, cpuPercent, cpuTicks, sleep, treeCpuTicks, startWorker, waitForDrain, type BenchDb, type BenchServer, type Drain } from '../harness';
import { RawScheduler, withRevs } from '../raw';
import { ms, ratioOf, type Row } from '../report';
import type { Summary } from '../stats';
import { expectAllDone } from './burst';
import { latenessOf } from './lateness';
import type { WorkloadOptions } from './options';

const TICK_MS = 50;
const DUE_AFTER_MS = 1000;
const RAW_MAX_MS = 30_000;

export async function runSteady(server: BenchServer, options: WorkloadOptions & { ratePerSecond: number; durationMs: number }): Promise<Row[]> {
  const { ratePerSecond, durationMs, concurrency } = options;
  const raw = await rawSteadyLateness(server, ratePerSecond, Math.min(durationMs, RAW_MAX_MS));
  const db = await server.newDb('w4');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let sent: number;
  let workerCpu: number;
  let dbCpu: number | undefined;
  let arrivalMs: number;
  let drain: Drain;
  let late;
  try {
    try {
      await worker.ready;
      const start = Date.now();
      const workerTicks = cpuTicks(worker.pid);
      const dbTicks = server.pid === undefined ? undefined : treeCpuTicks(server.pid);
      sent = await arrive(db, 'w4', ratePerSecond, durationMs, () => undefined);
      arrivalMs = Date.now() - start;
      workerCpu = cpuPercent(workerTicks, cpuTicks(worker.pid), arrivalMs);
      dbCpu = dbTicks === undefined ? undefined : cpuPercent(dbTicks, treeCpuTicks(server.pid!), arrivalMs);
      drain = await waitForDrain(worker, sent, 120_000);
      if (drain.complete) await expectAllDone(db, sent);
    } finally {
      lag = await worker.stop();
    }
    late = await latenessOf(db, 'w4-');
  } finally {
    await db.destroy();
  }

  const name = 'W4 steady';
  const rate = Math.round((sent / arrivalMs) * 1000);
  return [
    { workload: name, figure: `lateness p50 (${rate} tasks/s for ${Math.round(arrivalMs / 1000)} s)`, value: ms(late.p50), raw: ms(raw.p50), ratio: ratioOf(late.p50, raw.p50) },
    { workload: name, figure: 'lateness p99', value: ms(late.p99), raw: ms(raw.p99), ratio: ratioOf(late.p99, raw.p99), target: '≤ 25 ms', met: late.p99 <= 25 },
    { workload: name, figure: 'lateness max', value: ms(late.max), raw: ms(raw.max), ratio: ratioOf(late.max, raw.max) },
    { workload: name, figure: 'started early', value: String(late.early), target: '0', met: late.early === 0 && late.missing === 0 },
    ...(drain.complete ? [] : [{ workload: name, figure: 'not run 120 s after the last arrival', value: `${sent - drain.done} of ${sent}`, target: '0', met: false }]),
    {
      workload: name,
      figure: 'worker CPU (raw: database CPU)',
      value: `${workerCpu.toFixed(0)} %`,
      raw: dbCpu === undefined ? 'not on this machine' : `${dbCpu.toFixed(0)} %`,
      ratio: dbCpu === undefined ? undefined : ratioOf(workerCpu, dbCpu),
    },
    ...(lag ? [{ workload: name, figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

/**
 * Sends `ratePerSecond` tasks a second for `durationMs` into `db`, in a `_bulk_docs` every 50 ms,
 * each due 1 s after it was created; `onWritten` gets each batch once written (with revisions).
 * Resolves with the number sent once every insert has answered.
 */
async function arrive(db: BenchDb, prefix: string, ratePerSecond: number, durationMs: number, onWritten: (docs: TaskDoc[]) => void): Promise<number> {
  const start = Date.now();
  const total = Math.round((durationMs / 1000) * ratePerSecond);
  let sent = 0;
  const inserts: Promise<void>[] = [];
  // Each tick sends what the rate owes by now, so a slow insert does not lower the rate.
  for (let tick = 1; tick * TICK_MS <= durationMs; tick++) {
    await sleep(Math.max(0, start + tick * TICK_MS - Date.now()));
    const owed = Math.floor(((Date.now() - start) / 1000) * ratePerSecond) - sent;
    const count = Math.min(owed, total - sent);
    if (count <= 0) continue;
    const createdAt = Date.now();
    const docs = Array.from({ length: count }, (_, i) => benchTask(`${prefix}-${String(sent + i).padStart(7, '0')}`, createdAt + DUE_AFTER_MS));
    sent += count;
    inserts.push(db.bulkDocs(docs).then((rows) => onWritten(withRevs(docs, rows))));
  }
  await Promise.all(inserts);
  return sent;
}

/** `RawScheduler` under W4's arrivals, on a database with no design document. */
async function rawSteadyLateness(server: BenchServer, ratePerSecond: number, durationMs: number): Promise<Summary> {
  const db = await server.newDb('raw', { init: 'bare' });
  try {
    const scheduler = new RawScheduler(db);
    await arrive(db, 'raw', ratePerSecond, durationMs, (docs) => scheduler.add(docs));
    return await scheduler.finished();
  } finally {
    await db.destroy();
  }
}

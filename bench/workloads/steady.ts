/**
 * W4 steady: tasks arrive at 200 per second for 60 s, each due 1 s after it was created, in
 * small `_bulk_docs` every 50 ms (as a busy application would post them).
 * Raw = latency of those inserts under the same load: a write the database needs anyway.
 * CPU is read from /proc/<pid>/stat of the worker (and of the database) over the arrivals.
 */
import { benchTask, cpuPercent, cpuTicks, sleep, startWorker, type BenchServer } from '../harness';
import { ms, ratioOf, type Row } from '../report';
import { summarize } from '../stats';
import { expectAllDone } from './burst';
import { latenessOf } from './lateness';
import type { WorkloadOptions } from './options';

const TICK_MS = 50;
const DUE_AFTER_MS = 1000;

export async function runSteady(server: BenchServer, options: WorkloadOptions & { ratePerSecond: number; durationMs: number }): Promise<Row[]> {
  const { ratePerSecond, durationMs, concurrency } = options;
  const db = await server.newDb('w4');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let sent = 0;
  const insertLatencies: number[] = [];
  let workerCpu: number;
  let dbCpu: number;
  let arrivalMs: number;
  try {
    await worker.ready;
    const start = Date.now();
    const workerTicks = cpuTicks(worker.pid);
    const dbTicks = cpuTicks(server.pid);
    const inserts: Promise<void>[] = [];
    // Each tick sends what the rate owes by now, so a slow insert does not lower the rate.
    for (let tick = 1; tick * TICK_MS <= durationMs; tick++) {
      await sleep(Math.max(0, start + tick * TICK_MS - Date.now()));
      const owed = Math.floor(((Date.now() - start) / 1000) * ratePerSecond) - sent;
      const count = Math.min(owed, Math.round((durationMs / 1000) * ratePerSecond) - sent);
      if (count <= 0) continue;
      const createdAt = Date.now();
      const docs = Array.from({ length: count }, (_, i) => benchTask(`w4-${String(sent + i).padStart(7, '0')}`, createdAt + DUE_AFTER_MS));
      sent += count;
      inserts.push(
        db.bulkDocs(docs).then(() => {
          insertLatencies.push(Date.now() - createdAt);
        }),
      );
    }
    await Promise.all(inserts);
    arrivalMs = Date.now() - start;
    workerCpu = cpuPercent(workerTicks, cpuTicks(worker.pid), arrivalMs);
    dbCpu = cpuPercent(dbTicks, cpuTicks(server.pid), arrivalMs);
    await worker.waitForDone(sent, 120_000);
    await expectAllDone(db, sent);
  } finally {
    lag = await worker.stop();
  }
  const late = await latenessOf(db, 'w4-');
  await db.destroy();
  const raw = summarize(insertLatencies);

  const name = 'W4 steady';
  const rate = Math.round((sent / arrivalMs) * 1000);
  return [
    { workload: name, figure: `lateness p50 (${rate} tasks/s for ${Math.round(arrivalMs / 1000)} s)`, value: ms(late.p50), raw: ms(raw.p50), ratio: ratioOf(late.p50, raw.p50) },
    { workload: name, figure: 'lateness p99', value: ms(late.p99), raw: ms(raw.p99), ratio: ratioOf(late.p99, raw.p99), target: '≤ 25 ms', met: late.p99 <= 25 },
    { workload: name, figure: 'lateness max', value: ms(late.max), raw: ms(raw.max), ratio: ratioOf(late.max, raw.max) },
    { workload: name, figure: 'started early', value: String(late.early), target: '0', met: late.early === 0 && late.missing === 0 },
    { workload: name, figure: 'worker CPU (raw: database CPU)', value: `${workerCpu.toFixed(0)} %`, raw: `${dbCpu.toFixed(0)} %`, ratio: ratioOf(workerCpu, dbCpu) },
    ...(lag ? [{ workload: name, figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

/**
 * W1 burst: 3,000 tasks due now arrive at once for one worker that is already following the
 * feed. Drain = from the end of the insert until the database shows every task `done` (its
 * `_changes` feed, changes-clock.ts). Worker CPU per task = the worker process's CPU time over
 * the drain, divided by the tasks.
 * Raw = what the database needs at least for the same work: two `_bulk_docs` of all the
 * documents (to `running` with a lease, then to `done` with the run recorded), on a database
 * with no design document (raw.ts). The same writes in a database after `after init` are shown
 * too: what After's design document (a validate_doc_update, say) costs the database.
 */
import { watchChanges } from '../changes-clock';
import { benchTask, cpuTicks, startWorker, TICKS_PER_SECOND, waitForDrain, type BenchDb, type BenchServer, type Drain } from '../harness';
import { rawBurst } from '../raw';
import { ms, ratioOf, seconds, type Row } from '../report';
import type { TaskDoc } from '../../src/types';
import type { WorkloadOptions } from './options';

const TARGET_RATIO = 1.5;
/** Worker CPU per task in W1, ms (issue 20). */
const TARGET_CPU_MS_PER_TASK = 0.15;
/** Time allowed for a drain: generous, so a slow database still gives a figure. */
export function drainTimeoutMs(tasks: number): number {
  return Math.max(120_000, tasks * 100);
}

export async function runBurst(server: BenchServer, options: WorkloadOptions & { tasks: number }): Promise<Row[]> {
  const { tasks, concurrency } = options;
  const raw = await rawBurst(server, tasks);
  const rawAfterInit = await rawBurst(server, tasks, { init: 'after' });

  const db = await server.newDb('w1');
  const worker = startWorker(db, { concurrency, profileDir: options.profileDir });
  let lag;
  let drain: Drain;
  let insertMs: number;
  let lastInsertAt: number;
  let lastDoneSeenMs = Number.NaN;
  let cpuMsPerTask = Number.NaN;
  try {
    await worker.ready;
    const now = Date.now();
    const docs = Array.from({ length: tasks }, (_, i) => benchTask(`w1-${String(i).padStart(6, '0')}`, now));
    const insertStart = Date.now();
    await db.bulkDocs(docs);
    lastInsertAt = Date.now();
    const ticksBefore = cpuTicks(worker.pid);
    insertMs = lastInsertAt - insertStart;
    // Watching from the update seq after the insert: the drain's clock starts there, and a
    // watcher that read the 3,000 inserted documents too would cost the database (the embedded
    // server's one thread: half a second) what no user watching the burst's end pays.
    const clock = await watchChanges(db);
    try {
      drain = await waitForDrain(worker, tasks, drainTimeoutMs(tasks));
      cpuMsPerTask = ((cpuTicks(worker.pid) - ticksBefore) * (1000 / TICKS_PER_SECOND)) / tasks;
      if (drain.complete) lastDoneSeenMs = await clock.lastSeenMs(await expectAllDone(db, tasks));
    } finally {
      await clock.stop();
    }
  } finally {
    lag = await worker.stop();
    await db.destroy();
  }

  const drainMs = (Number.isFinite(lastDoneSeenMs) ? lastDoneSeenMs : drain.lastDoneAtMs) - lastInsertAt;
  const ratio = drain.complete ? ratioOf(drainMs, raw.drainMs) : undefined;
  return [
    {
      workload: 'W1 burst',
      figure: `drain ${tasks} tasks (concurrency ${concurrency})`,
      value: drainValue(drain, drainMs, tasks),
      raw: seconds(raw.drainMs),
      ratio,
      target: `≤ ${TARGET_RATIO.toFixed(1)}× raw`,
      met: ratio !== undefined && ratio <= TARGET_RATIO,
    },
    { workload: 'W1 burst', figure: 'throughput', value: `${Math.round((drain.done / drainMs) * 1000)} tasks/s`, raw: `${Math.round((tasks / raw.drainMs) * 1000)} tasks/s` },
    {
      workload: 'W1 burst',
      figure: 'worker CPU per task over the drain',
      value: `${cpuMsPerTask.toFixed(3)} ms`,
      target: `≤ ${TARGET_CPU_MS_PER_TASK} ms`,
      met: cpuMsPerTask <= TARGET_CPU_MS_PER_TASK,
    },
    {
      workload: 'W1 burst',
      figure: 'the raw writes in a database after after init',
      value: seconds(rawAfterInit.drainMs),
      raw: seconds(raw.drainMs),
      ratio: ratioOf(rawAfterInit.drainMs, raw.drainMs),
    },
    { workload: 'W1 burst', figure: `insert of the ${tasks} tasks (one _bulk_docs)`, value: seconds(insertMs) },
    ...(lag ? [{ workload: 'W1 burst', figure: 'worker event-loop delay p99 / max', value: `${ms(lag.p99)} / ${ms(lag.max)}` }] : []),
  ];
}

/** "4.20 s", or for a drain that did not finish "> 300.00 s (2400 of 3000 done)". */
export function drainValue(drain: Drain, drainMs: number, tasks: number, timeoutMs = drainTimeoutMs(tasks)): string {
  return drain.complete ? seconds(drainMs) : `> ${seconds(timeoutMs)} (${drain.done} of ${tasks} done)`;
}

/** Every task done, as the database holds them now (their final revisions, for the changes clock). */
export async function expectAllDone(db: BenchDb, tasks: number): Promise<TaskDoc[]> {
  const all = await db.allTasks();
  const done = all.filter((task) => task.status === 'done');
  if (done.length !== tasks) {
    const counts: Record<string, number> = {};
    for (const task of all) counts[String(task.status)] = (counts[String(task.status)] ?? 0) + 1;
    throw new Error(`expected ${tasks} tasks done, the database says ${JSON.stringify(counts)}`);
  }
  return done;
}

/**
 * W1b, the midnight burst: 3,000 tasks all due at one instant (a whole second, as midnight is),
 * inserted in one `_bulk_docs` 5 s before it while the worker follows the feed. Run twice: with
 * the worker's default concurrency (no `--concurrency`, as `after start` runs) and with the
 * bench's `--concurrency` (200).
 *
 * Start lateness = job start (stamped inside the job) − the due instant; drain = from the due
 * instant until the database shows the last task `done` (its `_changes` feed, changes-clock.ts). Raw (raw.ts, bare database): the claim write of all the
 * documents in one `_bulk_docs` (every task could start when it returns) and both writes (the
 * least drain).
 */
import { watchChanges } from '../changes-clock';
import { benchTask, sleep, startWorker, waitForDrain, type BenchServer, type Drain, type EventLoopLag } from '../harness';
import { rawBurst } from '../raw';
import { ms, ratioOf, seconds, type Row } from '../report';
import { drainTimeoutMs, drainValue, expectAllDone } from './burst';
import { latenessOf, type Lateness } from './lateness';
import type { WorkloadOptions } from './options';

const INSERT_AHEAD_MS = 5000;
const TARGET_RATIO = 1.5;
/** Start lateness p99 against the raw claim write of the whole burst (issue 20). */
const TARGET_LATENESS_RATIO = 2.0;

interface MidnightRun {
  label: string;
  dueAtMs: number;
  insertMs: number;
  drain: Drain;
  /** Date.now() when the database showed the last task done. */
  lastDoneSeenMs: number;
  late: Lateness;
  lag: EventLoopLag | undefined;
}

export async function runMidnight(server: BenchServer, options: WorkloadOptions & { tasks: number }): Promise<Row[]> {
  const { tasks } = options;
  const raw = await rawBurst(server, tasks);
  const runs = [
    await midnightRun(server, tasks, undefined, 'default concurrency', options.profileDir),
    await midnightRun(server, tasks, options.concurrency, `concurrency ${options.concurrency}`, options.profileDir),
  ];

  const name = 'W1b midnight';
  const rows: Row[] = [];
  for (const [index, run] of runs.entries()) {
    const drainMs = (Number.isFinite(run.lastDoneSeenMs) ? run.lastDoneSeenMs : run.drain.lastDoneAtMs) - run.dueAtMs;
    const ratio = run.drain.complete ? ratioOf(drainMs, raw.drainMs) : undefined;
    const targeted = index === runs.length - 1;
    rows.push(
      {
        workload: name,
        figure: `start lateness p50 / p99 / max (${run.label}; ratio: p99)`,
        value: `${ms(run.late.p50)} / ${ms(run.late.p99)} / ${ms(run.late.max)}`,
        raw: ms(raw.claimMs),
        ratio: ratioOf(run.late.p99, raw.claimMs),
        ...(targeted ? { target: `≤ ${TARGET_LATENESS_RATIO.toFixed(1)}× raw`, met: run.late.p99 <= TARGET_LATENESS_RATIO * raw.claimMs } : {}),
      },
      {
        workload: name,
        figure: `drain ${tasks} tasks from the due instant (${run.label})`,
        value: drainValue(run.drain, drainMs, tasks),
        raw: seconds(raw.drainMs),
        ratio,
        ...(targeted ? { target: `≤ ${TARGET_RATIO.toFixed(1)}× raw`, met: ratio !== undefined && ratio <= TARGET_RATIO } : {}),
      },
    );
  }
  rows.push(
    {
      workload: name,
      figure: `insert of the ${tasks} tasks, ${INSERT_AHEAD_MS / 1000} s before the due instant`,
      value: runs.map((run) => seconds(run.insertMs)).join(' / '),
    },
    {
      workload: name,
      figure: 'started early',
      value: runs.map((run) => String(run.late.early)).join(' / '),
      target: '0',
      met: runs.every((run) => run.late.early === 0),
    },
  );
  const lags = runs.filter((run) => run.lag);
  if (lags.length === runs.length) {
    rows.push({ workload: name, figure: 'worker event-loop delay p99 / max', value: runs.map((run) => `${ms(run.lag!.p99)} / ${ms(run.lag!.max)}`).join(', ') });
  }
  return rows;
}

async function midnightRun(server: BenchServer, tasks: number, concurrency: number | undefined, label: string, profileDir?: string): Promise<MidnightRun> {
  const db = await server.newDb('w1b');
  const worker = startWorker(db, { concurrency, profileDir });
  try {
    await worker.ready;
    const clock = await watchChanges(db);
    try {
      // The next whole second at least 5 s (plus a moment to build the documents) away.
      const dueAtMs = Math.ceil((Date.now() + INSERT_AHEAD_MS + 200) / 1000) * 1000;
      const docs = Array.from({ length: tasks }, (_, i) => benchTask(`w1b-${String(i).padStart(6, '0')}`, dueAtMs));
      await sleep(dueAtMs - INSERT_AHEAD_MS - Date.now());
      const insertStart = Date.now();
      await db.bulkDocs(docs);
      const insertMs = Date.now() - insertStart;
      const drain = await waitForDrain(worker, tasks, drainTimeoutMs(tasks) + Math.max(0, dueAtMs - Date.now()));
      const lastDoneSeenMs = drain.complete ? await clock.lastSeenMs(await expectAllDone(db, tasks)) : Number.NaN;
      // Stopped before the results are read: a run still going writes its result first.
      const lag = await worker.stop();
      return { label, dueAtMs, insertMs, drain, lastDoneSeenMs, late: await latenessOf(db, 'w1b-'), lag };
    } finally {
      await clock.stop();
    }
  } finally {
    await worker.stop(); // a second stop of an exited worker only reads its lag file again
    await db.destroy();
  }
}

/**
 * RL rate limit: three instances of one worker name share `"limits": {"bench": {"rate":
 * "30/s"}}`, with far more tasks due at once than the rate lets through. Over the 60 s from the
 * first start, the starts (stamped by the job itself) must come within 2 % of 30 a second, and
 * no window of one second may hold more than 30.
 * Raw = the rate configured: the figure to compare with.
 */
import { benchTask, sleep, startWorker, type BenchServer, type WorkerProcess } from '../harness';
import type { Row } from '../report';
import type { WorkloadOptions } from './options';

const INSTANCES = 3;
/** How long after the instances are ready the tasks are posted: each uses its share once the others can have seen it for a window. */
const SETTLE_MS = 5_000;

export async function runRateLimit(server: BenchServer, options: WorkloadOptions & { perSecond: number; durationMs: number }): Promise<Row[]> {
  const { perSecond, durationMs, concurrency } = options;
  const db = await server.newDb('rl', { config: { limits: { bench: { rate: `${perSecond}/s` } } } });
  const workers: WorkerProcess[] = [];
  // Enough for the whole measure and some more: the queue must never run dry.
  const total = Math.round((perSecond * (durationMs + 5_000)) / 1000);
  try {
    for (let i = 0; i < INSTANCES; i++) workers.push(startWorker(db, { concurrency, profileDir: options.profileDir }));
    await Promise.all(workers.map((worker) => worker.ready));
    await sleep(SETTLE_MS);
    const dueMs = Date.now() + 1_000;
    for (let start = 0; start < total; start += 1000) {
      const count = Math.min(1000, total - start);
      await db.bulkDocs(Array.from({ length: count }, (_, i) => benchTask(`rl-${String(start + i).padStart(6, '0')}`, dueMs)));
    }
    await waitForAllDone(workers, total, durationMs + 120_000);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
  }
  const tasks = await db.allTasks();
  const notDone = tasks.filter((doc) => doc.status !== 'done').length;
  if (tasks.length !== total || notDone > 0) throw new Error(`expected ${total} tasks done, found ${tasks.length} tasks, ${notDone} not done`);
  const starts = tasks
    .map((doc) => (doc.result as { started_at_ms?: number } | undefined)?.started_at_ms)
    .filter((at): at is number => typeof at === 'number')
    .sort((a, b) => a - b);
  await db.destroy();

  const first = starts[0]!;
  const inMeasure = starts.filter((at) => at < first + durationMs).length;
  const measuredRate = inMeasure / (durationMs / 1000);
  const deviation = measuredRate / perSecond - 1;
  const busiest = mostInAnyWindow(starts, 1000);
  const name = `RL rate limit (${INSTANCES} instances)`;
  return [
    {
      workload: name,
      figure: `starts per second over ${Math.round(durationMs / 1000)} s`,
      value: measuredRate.toFixed(2),
      raw: String(perSecond),
      ratio: measuredRate / perSecond,
      target: 'within 2 %',
      met: Math.abs(deviation) <= 0.02,
    },
    { workload: name, figure: 'most starts in any 1 s window', value: String(busiest), raw: String(perSecond), target: `≤ ${perSecond}`, met: busiest <= perSecond },
  ];
}

/** The `total`-th "done" line, over all instances (each task is done on exactly one). */
async function waitForAllDone(workers: WorkerProcess[], total: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = new Set<string>();
    for (const worker of workers) for (const id of worker.doneAtMs.keys()) done.add(id);
    if (done.size >= total) return;
    if (Date.now() > deadline) throw new Error(`only ${done.size} of ${total} tasks done within ${timeoutMs} ms; last lines: ${workers[0]!.tail()}`);
    await sleep(500);
  }
}

/** Most starts in any window of `periodMs` (both ends included). */
function mostInAnyWindow(sorted: number[], periodMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! > periodMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

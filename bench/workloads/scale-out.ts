/**
 * W5 scale-out, on a CouchDB cluster (COUCHDB_CLUSTER_URLS, one URL per node): 3,000 tasks due
 * at once, drained by 1, 2 and 3 instances of one worker, instance i connected to node i (its
 * AFTER_COUCHDB_URL), each in a fresh database initialised by `after init` through node 1 and
 * logging at debug level.
 *
 * Figures per instance count: drain (end of the insert → the last "done" line of any instance);
 * claims lost to contention per task (debug lines, harness.ts `isLostClaim`); tasks run twice
 * (the stamp job appends every start to a file per process, BENCH_STARTS_DIR); tasks lost (not
 * `done` once drained or timed out); conflicts left (`_all_docs?conflicts=true` read on every
 * node, after giving the instances 30 s to clear them, then again once they stopped).
 * Raw (raw.ts, bare database, same cluster): two `_bulk_docs` updates of the same 3,000
 * documents through node 1 (the target's base), and the same split over every node at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DoneTracker } from '../done-tracker';
import { benchTask, sleep, startWorker, waitForDrain, type BenchDb, type BenchServer, type Drain, type WorkerProcess } from '../harness';
import { rawBurst } from '../raw';
import { ratioOf, seconds, type Row } from '../report';
import { drainValue } from './burst';
import type { WorkloadOptions } from './options';

const TARGET_RATIO = 3.0;
const LOST_CLAIMS_PER_TASK = 0.05;
/** Time the instances get to clear stored conflicts after the drain (their own clean-up runs then). */
const CONFLICT_SETTLE_MS = 30_000;

interface ScaleOutRun {
  instances: number;
  drain: Drain;
  drainMs: number;
  insertMs: number;
  claimsLost: number;
  runTwice: number;
  lost: number;
  conflictsAtDrain: number;
  conflictsLeft: number;
}

export function scaleOutDrainTimeoutMs(tasks: number): number {
  return Math.max(120_000, tasks * 300);
}

export async function runScaleOut(
  server: BenchServer,
  options: WorkloadOptions & { tasks: number; instances: readonly number[]; onProgress(line: string): void },
): Promise<Row[]> {
  const { tasks } = options;
  if (server.kind !== 'cluster') throw new Error('W5 needs a cluster: set COUCHDB_CLUSTER_URLS to its node URLs (couchdb.sh cluster url)');
  const rawOne = await rawBurst(server, tasks);
  const rawSplit = await rawBurst(server, tasks, { spread: true });
  options.onProgress(`W5: raw writes ${seconds(rawOne.drainMs)} through one node, ${seconds(rawSplit.drainMs)} split over the nodes`);
  const runs: ScaleOutRun[] = [];
  for (const instances of options.instances) {
    const run = await scaleOutRun(server, tasks, instances, options.concurrency);
    options.onProgress(
      `W5: ${instances} instance(s): drain ${drainValue(run.drain, run.drainMs, tasks, scaleOutDrainTimeoutMs(tasks))}, ${run.claimsLost} claims lost, ${run.runTwice} run twice, ${run.lost} lost, ${run.conflictsLeft} conflicts left`,
    );
    runs.push(run);
  }

  const name = 'W5 scale-out';
  const one = runs.find((run) => run.instances === 1);
  const each = (format: (run: ScaleOutRun) => string): string => runs.map(format).join(' / ');
  const counts = `(${each((run) => String(run.instances))} instances)`;
  const rows: Row[] = runs.map((run) => {
    const ratio = run.drain.complete ? ratioOf(run.drainMs, rawOne.drainMs) : undefined;
    const row: Row = {
      workload: name,
      figure: `drain ${tasks} tasks, ${run.instances} instance${run.instances > 1 ? 's, one per node' : ''} (concurrency ${options.concurrency})`,
      value: drainValue(run.drain, run.drainMs, tasks, scaleOutDrainTimeoutMs(tasks)),
      raw: seconds(rawOne.drainMs),
      ratio,
    };
    if (run.instances === 1) return { ...row, target: `≤ ${TARGET_RATIO.toFixed(1)}× raw`, met: ratio !== undefined && ratio <= TARGET_RATIO };
    if (!one) return row;
    return { ...row, target: `≤ 1 instance's (${seconds(one.drainMs)})`, met: run.drain.complete && one.drain.complete && run.drainMs <= one.drainMs };
  });
  const lostPerTask = (run: ScaleOutRun): number => run.claimsLost / tasks;
  rows.push(
    { workload: name, figure: `raw: the same two writes split over the ${server.displayUrls.length} nodes at once`, value: seconds(rawSplit.drainMs) },
    { workload: name, figure: `insert of the ${tasks} tasks through node 1 ${counts}`, value: each((run) => seconds(run.insertMs)) },
    {
      workload: name,
      figure: `claims lost to contention per task ${counts}`,
      value: each((run) => lostPerTask(run).toFixed(3)),
      target: `< ${LOST_CLAIMS_PER_TASK}`,
      met: runs.every((run) => lostPerTask(run) < LOST_CLAIMS_PER_TASK),
    },
    { workload: name, figure: `tasks run twice ${counts}`, value: each((run) => String(run.runTwice)), target: '0', met: runs.every((run) => run.runTwice === 0) },
    { workload: name, figure: `tasks lost (not done) ${counts}`, value: each((run) => String(run.lost)), target: '0', met: runs.every((run) => run.lost === 0) },
    {
      workload: name,
      figure: `conflicts at drain → left ${CONFLICT_SETTLE_MS / 1000} s later, every node ${counts}`,
      value: each((run) => `${run.conflictsAtDrain} → ${run.conflictsLeft}`),
      target: '0 left',
      met: runs.every((run) => run.conflictsLeft === 0),
    },
  );
  return rows;
}

async function scaleOutRun(server: BenchServer, tasks: number, instances: number, concurrency: number): Promise<ScaleOutRun> {
  const db = await server.newDb(`w5x${instances}`, { config: { log: { level: 'debug' } } });
  const startsDir = path.join(db.place, 'starts');
  fs.mkdirSync(startsDir, { recursive: true });
  const workers: WorkerProcess[] = [];
  const done = new DoneTracker({
    exited: () => workers.every((worker) => worker.exited()),
    tail: () => workers.map((worker, node) => `instance ${node + 1}:\n${worker.tail()}`).join('\n'),
  });
  try {
    let insertEnd: number;
    let insertMs: number;
    let drain: Drain;
    let conflictsAtDrain: number;
    let conflictsLeft: number;
    try {
      for (let i = 0; i < instances; i++) {
        workers.push(startWorker(db, { node: i % db.nodes.length, concurrency, env: { BENCH_STARTS_DIR: startsDir }, done }));
      }
      await Promise.all(workers.map((worker) => worker.ready));
      const now = Date.now();
      const docs = Array.from({ length: tasks }, (_, i) => benchTask(`w5-${String(i).padStart(6, '0')}`, now));
      const insertStart = Date.now();
      await db.bulkDocs(docs);
      insertEnd = Date.now();
      insertMs = insertEnd - insertStart;
      drain = await waitForDrain({ waitForDone: (count, timeoutMs) => done.waitForDone(count, timeoutMs), doneAtMs: done.doneAtMs }, tasks, scaleOutDrainTimeoutMs(tasks));
      conflictsAtDrain = await storedConflicts(db);
      conflictsLeft = conflictsAtDrain;
      const settleUntil = Date.now() + CONFLICT_SETTLE_MS;
      while (conflictsLeft > 0 && Date.now() < settleUntil) {
        await sleep(1000);
        conflictsLeft = await storedConflicts(db);
      }
    } finally {
      // A stop lets runs in progress finish, so a duplicate run still going is counted.
      await Promise.all(workers.map((worker) => worker.stop()));
    }
    conflictsLeft = Math.max(conflictsLeft, await storedConflicts(db));
    const doneInDb = await doneCount(db, tasks);
    return {
      instances,
      drain,
      drainMs: drain.lastDoneAtMs - insertEnd,
      insertMs,
      claimsLost: workers.reduce((sum, worker) => sum + worker.claimsLost, 0),
      runTwice: tasksStartedTwice(startsDir),
      lost: tasks - doneInDb,
      conflictsAtDrain,
      conflictsLeft,
    };
  } finally {
    await db.destroy();
  }
}

/** Tasks `done` in the database; a cluster's `_all_docs` may lag its last writes a moment, so a short count is read again. */
async function doneCount(db: BenchDb, tasks: number): Promise<number> {
  let count = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) await sleep(2000);
    count = (await db.allTasks()).filter((task) => task._id.startsWith('w5-') && task.status === 'done').length;
    if (count === tasks) break;
  }
  return count;
}

/** Tasks with a stored conflict on any node (each node read on its own, with its own copy). */
async function storedConflicts(db: BenchDb): Promise<number> {
  const withConflicts = new Set<string>();
  for (const node of db.nodes) {
    const res = await node.request<{ rows: Array<{ id: string; doc?: { _conflicts?: string[] } }> }>('GET', '_all_docs?conflicts=true&include_docs=true');
    for (const row of res.rows) if ((row.doc?._conflicts ?? []).length > 0) withConflicts.add(row.id);
  }
  return withConflicts.size;
}

/** Tasks whose start the stamp job recorded more than once, over every instance's file. */
function tasksStartedTwice(startsDir: string): number {
  const starts = new Map<string, number>();
  for (const file of fs.readdirSync(startsDir)) {
    for (const line of fs.readFileSync(path.join(startsDir, file), 'utf8').split('\n')) {
      const id = line.split(' ')[0];
      if (id) starts.set(id, (starts.get(id) ?? 0) + 1);
    }
  }
  return [...starts.values()].filter((count) => count > 1).length;
}

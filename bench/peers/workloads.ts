/**
 * W1 and W2 for a peer, with the counts, dates and summaries of After's own workloads
 * (bench/workloads/burst.ts and precision.ts): only the scheduler differs.
 */
import { ms, seconds, type Row } from '../report';
import { summarize } from '../stats';
import type { Peer, PeerTask } from './peer';

/** As in precision.ts: dates start this far after the insert, so the insert cannot make a task late. */
const FIRST_DATE_AFTER_MS = 1000;

export interface PeerWorkloadOptions {
  tasks: number;
  concurrency: number;
}

export async function runPeerBurst(peer: Peer, options: PeerWorkloadOptions): Promise<Row[]> {
  const { tasks, concurrency } = options;
  const queue = await peer.openQueue('w1', concurrency);
  let insertMs: number;
  let drainMs: number;
  try {
    const now = Date.now();
    const due: PeerTask[] = Array.from({ length: tasks }, (_, i) => ({ id: `w1-${String(i).padStart(6, '0')}`, dueMs: now }));
    const insertStart = Date.now();
    await queue.insert(due);
    const lastInsertAt = Date.now();
    insertMs = lastInsertAt - insertStart;
    drainMs = (await queue.waitForAllDone(tasks, 120_000)) - lastInsertAt;
  } finally {
    await queue.close();
  }
  const workload = 'W1 burst';
  return [
    { workload, figure: `${peer.label}: drain ${tasks} tasks (concurrency ${concurrency})`, value: seconds(drainMs) },
    { workload, figure: `${peer.label}: throughput`, value: `${Math.round((tasks / drainMs) * 1000)} tasks/s` },
    { workload, figure: `${peer.label}: insert of the ${tasks} tasks (one call)`, value: seconds(insertMs) },
  ];
}

export async function runPeerPrecision(peer: Peer, options: PeerWorkloadOptions & { spreadMs: number }): Promise<Row[]> {
  const { tasks, concurrency, spreadMs } = options;
  const queue = await peer.openQueue('w2', concurrency);
  let due: PeerTask[];
  try {
    const now = Date.now();
    due = Array.from({ length: tasks }, (_, i) => ({
      id: `w2-${String(i).padStart(6, '0')}`,
      dueMs: now + FIRST_DATE_AFTER_MS + Math.floor(Math.random() * spreadMs),
    }));
    await queue.insert(due);
    await queue.waitForAllDone(tasks, spreadMs + 60_000);
  } finally {
    await queue.close();
  }
  const lateness: number[] = [];
  for (const task of due) {
    const startedAt = queue.startedAtMs.get(task.id);
    if (startedAt !== undefined) lateness.push(startedAt - task.dueMs);
  }
  if (lateness.length < tasks) throw new Error(`${tasks - lateness.length} of ${tasks} jobs never reported their start`);
  const late = summarize(lateness);
  const early = lateness.filter((value) => value < 0).length;
  const workload = 'W2 precision';
  return [
    { workload, figure: `${peer.label}: lateness p50 (${tasks} tasks over ${spreadMs / 1000} s)`, value: ms(late.p50) },
    { workload, figure: `${peer.label}: lateness p99`, value: ms(late.p99) },
    { workload, figure: `${peer.label}: lateness max`, value: ms(late.max) },
    { workload, figure: `${peer.label}: started early`, value: String(early) },
  ];
}

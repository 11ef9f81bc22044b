/**
 * When a task that has still to run will run, and why it has not yet: what a user asks first of
 * a waiting task ("Why is it stuck?"). Pure: the caller passes what the database says (the
 * task, the live instances of its worker, the paused names, the tasks it waits for, the limits).
 */
import type { DependencyState } from '../store/for-operators/task-queries';
import type { TaskDoc } from '../types';
import { rendezvousOwner } from '../worker/peers/membership';

export type WaitKind = 'paused' | 'worker-paused' | 'dependency' | 'no-instance' | 'throttled' | 'share' | 'held' | 'running' | 'due' | 'future' | 'finished';

export interface WaitingReason {
  kind: WaitKind;
  /** When it is expected to start (ISO 8601), when that can be told. */
  runsAt: string | null;
  /** One line for a person. */
  text: string;
}

export interface WaitContext {
  nowMs: number;
  /** The live instances of the task's worker: id, and due tasks held back by a limit. */
  instances: ReadonlyArray<{ instance: string; throttled?: number }>;
  workerPaused: boolean;
  /** States of the tasks named in `after` (readDependencyStates). */
  dependencies: readonly DependencyState[];
  /** The config `limits` keys that apply to the task (`worker`, `worker/job`), with their rule in words. */
  limits: readonly string[];
  /** How long another instance waits past the date before covering for the owner. */
  claimGraceMs: number;
}

const FINISHED = ['done', 'error', 'canceled'];

export function waitingReason(doc: TaskDoc, ctx: WaitContext): WaitingReason {
  const status = typeof doc.status === 'string' ? doc.status : 'waiting';
  const worker = String(doc.worker);
  const runNow = typeof doc.run_now === 'string' ? doc.run_now : undefined;
  const date = typeof doc.date === 'string' ? doc.date : null;
  const dueAt = runNow !== undefined && (date === null || runNow < date) ? runNow : date;
  const dueMs = dueAt === null ? Number.NaN : Date.parse(dueAt);
  if (FINISHED.includes(status)) return { kind: 'finished', runsAt: null, text: `${status}: it does not run again unless set back to waiting (Retry, Run now)` };
  if (status === 'running') return { kind: 'running', runsAt: null, text: `running on ${doc.lease?.instance ?? 'an instance'}` };
  if (status === 'paused') return { kind: 'paused', runsAt: null, text: 'paused: it runs only after Resume' };
  if (status === 'cancel') return { kind: 'finished', runsAt: null, text: 'being canceled by its worker' };
  if (ctx.workerPaused) return { kind: 'worker-paused', runsAt: null, text: `worker ${worker} is paused (after resume ${worker})` };
  const pending = ctx.dependencies.filter((dep) => dep.status !== 'done');
  if (pending.length > 0) {
    const listed = pending.slice(0, 5).map((dep) => `${dep.id} (${dep.status ?? 'missing'})`).join(', ');
    return { kind: 'dependency', runsAt: null, text: `waits for ${listed}${pending.length > 5 ? ` and ${pending.length - 5} more` : ''} to be done` };
  }
  if (ctx.instances.length === 0) return { kind: 'no-instance', runsAt: dueAt, text: `no live instance of worker ${worker}: start one with after start ${worker}` };
  if (!Number.isFinite(dueMs)) return { kind: 'due', runsAt: null, text: 'its date cannot be read: the worker will set it to error' };
  const inMs = dueMs - ctx.nowMs;
  if (inMs > 0) {
    const holder = status === 'scheduled' && doc.lease?.instance ? ` (held in memory by ${doc.lease.instance})` : '';
    return { kind: status === 'scheduled' ? 'held' : 'future', runsAt: dueAt, text: `runs at ${dueAt}${holder}` };
  }
  const throttled = ctx.instances.reduce((sum, i) => sum + (i.throttled ?? 0), 0);
  if (ctx.limits.length > 0 && throttled > 0) {
    return { kind: 'throttled', runsAt: null, text: `due; ${throttled} due task(s) of ${worker} wait for room in limit ${ctx.limits.join(', ')}` };
  }
  if (ctx.instances.length > 1) {
    const owner = rendezvousOwner(ctx.instances.map((i) => i.instance).sort(), doc._id);
    const coverMs = dueMs + ctx.claimGraceMs;
    return {
      kind: 'share',
      runsAt: dueAt,
      text: `due; it is the share of instance ${owner}${coverMs > ctx.nowMs ? `, the others take it over from ${new Date(coverMs).toISOString()}` : ', and past its grace any instance takes it'}`,
    };
  }
  return { kind: 'due', runsAt: dueAt, text: `due since ${dueAt}: about to start` };
}

/**
 * Every document a worker writes to a task, built in one place. Each builder is a pure function
 * of the document as last seen (with its `_rev`: every write is based on it), the instance, the
 * database's time and the settings; it returns a new document and never mutates its input. The
 * worker only carries out what these return; `decide()` says which to build.
 *
 * Each builder is named for its transition (src/types.ts, "Transitions"): the same word is the
 * decision kind that asks for it, the `during` of a conflict, and the event and log line after it.
 *
 * | transition          | when                                            | status after             |
 * |---------------------|-------------------------------------------------|--------------------------|
 * | `schedule`          | a task due later is held in memory              | scheduled + lease        |
 * | `claim`             | a due task is taken to run                      | running + lease          |
 * | `renew`             | while the job runs, a third of the lease on     | running (or paused), lease moved on |
 * | `finish`            | a run ended (see next-state.ts)                 | done/error/waiting/...   |
 * | `handBack`          | a stop, a pause or a limit: the task goes back  | waiting, no lease        |
 * | `markWaiting`       | a task without `status` beyond the horizon      | waiting                  |
 * | `invalid`           | the document is no task the worker can run      | error                    |
 * | `dependencyFailed`  | a task it waits for failed, is missing...       | error (E_DEPENDENCY)     |
 * | `cancel`            | a user's cancel, acknowledged                   | canceled                 |
 */
import type { Lease, RunOutcome, TaskDoc } from '../types';
import { formatDate } from './dates';
import { canceledState, invalidState, nextState, withoutLease, type NextStateOptions, type RunRecord } from './next-state';
import type { ParsedTask } from './validate';

/** Every write a worker makes to a task, by its transition's name (and `request`: a user's, carried out). */
export type Transition = 'schedule' | 'claim' | 'renew' | 'finish' | 'hand-back' | 'mark-waiting' | 'invalid' | 'dependency-failed' | 'cancel' | 'request';

/** The writes a job or a user waits for leave at once; the others may queue behind them. */
export function isUrgent(transition: Transition): boolean {
  return transition === 'claim' || transition === 'finish' || transition === 'request';
}

/** The writes that make this instance the task's holder (docs/spec.md §7: in a cluster, a 202 for them is not ownership). */
export function takesHold(transition: Transition): boolean {
  return transition === 'claim' || transition === 'schedule';
}

export interface WriteContext {
  instance: string;
  /** Database time, epoch ms: leases are judged by the database's clock. */
  nowMs: number;
  /** How long a `running` claim holds before another instance may take the run over. */
  leaseMs: number;
  /**
   * How long past its date a `scheduled` hold keeps other instances off: the holder claims
   * the task at its date; if it has not by then (it is busy, slow or gone) another may.
   */
  graceMs: number;
}

/** `scheduled` with a lease of this instance until `graceMs` after the date. */
export function schedule(doc: TaskDoc, dateMs: number, ctx: WriteContext): TaskDoc {
  return { ...restartedSeries(doc), status: 'scheduled', lease: lease(ctx.instance, Math.max(dateMs, ctx.nowMs) + ctx.graceMs) };
}

/** `running` with a fresh lease of this instance: the write that makes a run ours. */
export function claim(doc: TaskDoc, ctx: WriteContext): TaskDoc {
  return { ...restartedSeries(doc), status: 'running', lease: lease(ctx.instance, ctx.nowMs + ctx.leaseMs) };
}

/**
 * The run's lease moved on. A task a user paused during the run stays `paused`; one a user
 * resumed (`waiting`) before the run ended is `running` again, which it is.
 */
export function renew(doc: TaskDoc, ctx: WriteContext): TaskDoc {
  const status = doc.status === 'paused' ? 'paused' : 'running';
  return { ...doc, status, lease: lease(ctx.instance, ctx.nowMs + ctx.leaseMs) };
}

/**
 * What is written when a run ended: next-state.ts decides it. A user who paused the task while
 * it ran keeps it paused: the run is recorded, the task stays out of the schedule.
 */
export function finish(doc: TaskDoc, task: ParsedTask, outcome: RunOutcome, run: RunRecord, options: NextStateOptions): TaskDoc {
  const next = nextState(doc, task, outcome, run, options);
  // A new document, not a change to `next`: its text is kept for the write (document-size.ts).
  if (doc.status === 'paused' && (next.status === 'waiting' || next.status === 'running')) return { ...next, status: 'paused' };
  return next;
}

/** Give a held task back so any instance may take it: `waiting`, no lease. */
export function handBack(doc: TaskDoc): TaskDoc {
  const next = withoutLease(doc);
  next.status = doc.status === 'running' || doc.status === 'scheduled' ? 'waiting' : doc.status;
  return next;
}

/** A task with no status (which means waiting), written `waiting` so the date index holds it. */
export function markWaiting(doc: TaskDoc): TaskDoc {
  return { ...doc, status: 'waiting' };
}

/** `error` naming the field that makes the document no task the worker can run. */
export function invalid(doc: TaskDoc, field: string, message: string): TaskDoc {
  return invalidState(doc, field, message);
}

/**
 * `error` because of the tasks it waits for (`after`): one ended `error` or `canceled`, does not
 * exist, repeats, or waits for this task in turn. `message` names it.
 */
export function dependencyFailed(doc: TaskDoc, message: string): TaskDoc {
  const next = withoutLease(doc);
  next.status = 'error';
  next.error = { message, code: 'E_DEPENDENCY' };
  return next;
}

/** A user's `cancel` acknowledged, no run started. */
export function cancel(doc: TaskDoc): TaskDoc {
  return canceledState(doc);
}

/**
 * A user's reschedule starts a repeat series again from the new date: the old anchor goes
 * with the next write (the `scheduled` hold or the claim), so later dates follow the new one.
 */
export function restartedSeries(doc: TaskDoc): TaskDoc {
  if (doc.status !== 'reschedule' || !('anchor_date' in doc)) return doc;
  const { anchor_date: _oldAnchor, ...rest } = doc;
  return rest as TaskDoc;
}

function lease(instance: string, expiresMs: number): Lease {
  return { instance, expires_at: formatDate(expiresMs) };
}

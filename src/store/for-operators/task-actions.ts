/**
 * Steering one task: pause, resume and run now, for `after task pause|resume|run`, the library
 * API and the dashboard. Each is one ordinary write of the task document with its current
 * `_rev` (tasks.ts updateTask: a 409 reads it again and checks again), so a user with curl
 * does exactly the same:
 *
 * | action  | the write                                         | refused when the task is        |
 * |---------|---------------------------------------------------|---------------------------------|
 * | pause   | `"status": "paused"`                              | done, error, canceled, cancel   |
 * | resume  | `"status": "waiting"`                             | anything but paused             |
 * | run now | `"run_now": "<ISO time asked>"` (and `"status": "waiting"` for a finished one) | running, paused, cancel, canceled |
 *
 * A run now leaves `date` alone: the worker runs the task at the earlier of `date` and
 * `run_now`, removes `run_now` with that run's result, and a repeating task keeps its series
 * (next-state.ts). A task that is running is refused: a second run cannot start while one runs.
 */
import { AfterError } from '../../errors';
import type { TaskDoc } from '../../types';
import { PAUSE_INTENT, updateTask, type TaskIntent } from './tasks';
import type { Connection } from '../connection';

const FINISHED = ['done', 'error', 'canceled'];

export function statusOf(doc: TaskDoc): string {
  return typeof doc.status === 'string' ? doc.status : 'waiting';
}

/** The task's worker stops scheduling it; a run in progress finishes and the task stays paused. */
export function pauseTask(conn: Connection, id: string): Promise<TaskDoc> {
  return updateTask(
    conn,
    id,
    (doc) => {
      const status = statusOf(doc);
      if (status === 'paused') return null;
      if (FINISHED.includes(status) || status === 'cancel') refuse(id, `is ${status}: there is nothing left to pause`);
      return { ...doc, status: 'paused' };
    },
    PAUSE_INTENT,
  );
}

/**
 * Back to `waiting`: scheduled again by its date (a date that passed meanwhile runs at once, a
 * repeat that missed several dates once). A task paused during a run that has not ended yet
 * keeps that run's lease: the run goes on and records its outcome.
 */
export function resumeTask(conn: Connection, id: string): Promise<TaskDoc> {
  return updateTask(conn, id, (doc) => {
    const status = statusOf(doc);
    if (status !== 'paused') refuse(id, `is not paused (it is ${status})`);
    return { ...doc, status: 'waiting' };
  });
}

/** What `after task run` asks: the task shows the request, or has run since it was asked. */
export function runNowIntent(at: string): TaskIntent {
  const askedMs = Date.parse(at);
  return {
    action: 'run-now',
    date: at,
    done: (doc) => doc === null || doc.run_now === at || (typeof doc.last_run?.started_at === 'string' && Date.parse(doc.last_run.started_at) >= askedMs),
  };
}

/**
 * Run the task once now: a one-shot task runs now instead of at its date; a repeating one runs
 * one extra time and keeps its series; a finished one runs again (as setting it back to
 * `waiting` does).
 */
export function runTaskNow(conn: Connection, id: string): Promise<TaskDoc> {
  const at = new Date(conn.clock.dbNow()).toISOString();
  return updateTask(
    conn,
    id,
    (doc) => {
      const status = statusOf(doc);
      if (status === 'running') refuse(id, 'is running now; it can run again once this run has ended');
      if (status === 'paused') refuse(id, `is paused; resume it first ('after task resume ${id}')`);
      if (status === 'cancel' || status === 'canceled') refuse(id, `is ${status === 'cancel' ? 'being canceled' : 'canceled'}; it does not run any more`);
      return { ...doc, status: FINISHED.includes(status) ? 'waiting' : status, run_now: at };
    },
    runNowIntent(at),
  );
}

function refuse(id: string, why: string): never {
  throw new AfterError('E_ACTION', `task ${id} ${why}`);
}

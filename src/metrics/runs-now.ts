/**
 * What an instance runs now, for its heartbeat document (`running_now`), so that `after status`
 * and the dashboard show each instance's runs and since when, as Sidekiq's Busy page does. Fed
 * by the worker's events; `runningNowField` is the pure part that shapes the field.
 */
import type { SafeEmitter } from '../events';
import type { RunNow } from '../store/control';
import type { WorkerEvents } from '../worker/worker-events';


/** Runs listed in a heartbeat at most: the document is rewritten every 10 s. */
export const RUNNING_NOW_LIMIT = 20;

/** The runs in progress, longest-running first, at most `limit` of them. */
export function runningNowField(runs: ReadonlyMap<string, { job: string; sinceMs: number }>, limit = RUNNING_NOW_LIMIT): RunNow[] {
  return [...runs.entries()]
    .sort((a, b) => a[1].sinceMs - b[1].sinceMs || (a[0] < b[0] ? -1 : 1))
    .slice(0, limit)
    .map(([id, run]) => ({ id, job: run.job, since: new Date(run.sinceMs).toISOString() }));
}

/** Follows a worker's runs from its events; `field()` is what its heartbeat reports. */
export function trackRunsNow(events: SafeEmitter<WorkerEvents>, now: () => number): { field(): RunNow[] } {
  const runs = new Map<string, { job: string; sinceMs: number }>();
  const ended = (e: { id: string }): void => void runs.delete(e.id);
  events.on('task:started', (e) => runs.set(e.id, { job: e.job, sinceMs: now() }));
  events.on('task:finished', ended);
  events.on('task:handed-back', ended);
  events.on('task:canceled', ended);
  events.on('worker:stopped', () => runs.clear());
  return { field: () => runningNowField(runs) };
}

/**
 * What a worker instance reports as it works, and the log lines those reports become. The
 * metrics and the library API listen to the same events. Each task event is named for the
 * transition it follows (src/types.ts, "Transitions"), in the past tense.
 */
import { formatDuration } from '../format-duration';
import { quickLine, type Logger } from '../log';
import type { SafeEmitter } from '../events';
import type { RunOutcome } from '../types';

export interface WorkerEvents extends Record<string, unknown> {
  'worker:ready': { instance: string; since: string };
  'worker:stopped': { instance: string };
  'task:scheduled': { id: string; date: string };
  'task:claimed': { id: string };
  'task:started': { id: string; job: string; lateMs: number };
  /** `outcome`: how the job ended (success, failure, canceled, or the job's own later, retry, release). */
  'task:finished': { id: string; status: string; durationMs: number; outcome?: RunOutcome['kind']; error?: string; date?: string };
  'task:invalid': { id: string; message: string };
  /** A task it waits for (`after`) failed, does not exist, repeats, or waits for it in turn. */
  'task:dependency-failed': { id: string; message: string };
  'task:canceled': { id: string };
  'task:conflict': { id: string; during: string };
  /** A claim in a cluster that reached fewer copies than a quorum (a 202): not ours (docs/spec.md §7). */
  'task:contested': { id: string; during: string };
  'task:handed-back': { id: string };
  /** A run starts that waited for a rate or concurrency limit (config `limits`, key `limit`). */
  'task:throttled': { id: string; limit: string; waitedMs: number };
}

export function logWorkerEvents(events: SafeEmitter<WorkerEvents>, log: Logger): void {
  events.on('task:scheduled', (e) => log.info(`task ${e.id} scheduled for ${e.date}`));
  // The two lines of every run: a burst logs thousands a second (log.ts, quickLine).
  events.on('task:started', (e) => quickLine(log, 'info', `task ${e.id} running (job ${e.job}, ${describeLateness(e.lateMs)})`));
  events.on('task:finished', (e) => {
    const asked = e.outcome === 'later' || e.outcome === 'retry' || e.outcome === 'release' ? ` (the job asked: ${e.outcome})` : '';
    const how = e.status === 'waiting' ? `waiting, next run at ${e.date}${asked}` : e.status;
    const why = e.error ? `: ${e.error}` : '';
    quickLine(log, e.status === 'error' ? 'error' : 'info', `task ${e.id} ${how} after ${e.durationMs} ms${why}`);
  });
  events.on('task:claimed', (e) => quickLine(log, 'debug', `task ${e.id} claimed`));
  events.on('task:invalid', (e) => log.error(`task ${e.id} error: ${e.message}`));
  events.on('task:dependency-failed', (e) => log.error(`task ${e.id} error: ${e.message}`));
  events.on('task:canceled', (e) => log.info(`task ${e.id} canceled`));
  events.on('task:handed-back', (e) => log.info(`task ${e.id} handed back (waiting)`));
  events.on('task:throttled', (e) => log.debug(`task ${e.id} waited ${e.waitedMs} ms for limit ${e.limit}`));
  events.on('task:conflict', (e) => log.debug(`task ${e.id}: changed by another writer during ${e.during}; deciding again`));
  events.on('task:contested', (e) => log.debug(`task ${e.id}: the ${e.during} reached fewer copies than a quorum (202); standing down`));
}

/** "12 ms after its date", or for a task found long overdue "overdue by 3d 4h". */
export function describeLateness(lateMs: number): string {
  return lateMs < 60_000 ? `${lateMs} ms after its date` : `overdue by ${formatDuration(lateMs)}`;
}

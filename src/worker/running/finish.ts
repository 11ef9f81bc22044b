/**
 * The end of a run: its outcome written as one finish write (task/next-state.ts decides what),
 * on the task as this instance last saw it, and again on the task read back when a user's
 * cancel, pause or resume came while it ran. What the instance does with the task afterwards
 * (let it go, decide its next date, hand it back) is the pipeline's.
 */
import type { SafeEmitter } from '../../events';
import type { Logger } from '../../log';
import type { WriteOutcome } from '../../store/types';
import type { RunOutcome, TaskDoc } from '../../types';
import type { WorkerEvents } from '../events';
import type { HeldTask } from '../held-task';
import type { JobRun } from './job-run';

/** Finish writes tried again when the task changed under the run in a way the run answers. */
const FINISH_TRIES = 6;

/** How a run ended, for the pipeline to act on. */
export type RunEnd =
  /** The outcome is written: the task's document is as written. */
  | { kind: 'finished' }
  /** Not written: deleted, taken over, changed by another writer, or refused. `newest`: the task now, to decide again. */
  | { kind: 'abandoned'; newest: TaskDoc | null }
  /** Stopped by the shutdown's grace period: the task goes back to `waiting`. */
  | { kind: 'shutdown' };

export interface FinishParts {
  worker: string;
  instance: string;
  historyLimit: number;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  write(task: HeldTask, doc: TaskDoc): Promise<WriteOutcome>;
}

/** Writes the end of `run` (whose job ended with `outcome` at `finishedAtMs`). */
export async function finishRun(task: HeldTask, run: JobRun, outcome: RunOutcome, finishedAtMs: number, parts: FinishParts): Promise<RunEnd> {
  const { log, events } = parts;
  // A renewal still in flight (the database away, say) goes first: the finish is written on
  // the `_rev` it leaves, and it may have learnt that the run was taken over meanwhile.
  await task.renewing;
  const reason = run.abortReason;
  if (reason === 'shutdown') {
    task.abandoned();
    return { kind: 'shutdown' };
  }
  if (reason === 'deleted' || reason === 'taken-over') {
    log.warn(`task ${task.id}: run abandoned (${reason === 'deleted' ? 'the task was deleted' : 'another writer changed the task'})`);
    const newest = reason === 'taken-over' ? task.doc : null;
    task.abandoned();
    return { kind: 'abandoned', newest };
  }
  const record = { startedAtMs: run.startedAtMs, finishedAtMs, worker: parts.worker, instance: parts.instance };
  for (let attempt = 1; ; attempt++) {
    const { doc, result } = task.finish(outcome, record, { historyLimit: parts.historyLimit });
    const written = await parts.write(task, doc);
    if (written.kind === 'lost' && attempt < FINISH_TRIES && task.finishAgainOn(written.fresh) !== 'no') continue;
    task.finished(written);
    if (written.kind === 'written') {
      events.emit('task:finished', {
        id: task.id,
        status: String(task.doc.status),
        durationMs: finishedAtMs - run.startedAtMs,
        outcome: result.kind,
        ...(task.doc.status === 'waiting' ? { date: String(task.doc.run_now ?? task.doc.date) } : {}),
        ...(result.kind === 'failure' || result.kind === 'retry' ? { error: result.error.message } : {}),
      });
      return { kind: 'finished' };
    }
    if (written.kind === 'failed') {
      log.error(`task ${task.id}: could not record the run: ${written.error.message}`);
      return { kind: 'abandoned', newest: null };
    }
    log.warn(`task ${task.id}: the run ended but another writer had changed the task; its result is not recorded`);
    return { kind: 'abandoned', newest: written.fresh };
  }
}

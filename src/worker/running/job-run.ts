/**
 * One run of a claimed task's job, as the worker holds it: when it started, how it ends, and
 * why it was stopped from outside. The lease is renewed beside it (lease-renewals.ts), and the
 * outcome recorded by the pipeline.
 */
import type { Clock } from '../../clock';
import { startJob, type JobFunction } from '../../jobs/run-job';
import type { Logger } from '../../log';
import type { RunOutcome, TaskDoc } from '../../types';

/** Why a run was stopped from outside. */
export type AbortReason = 'cancel' | 'deleted' | 'taken-over' | 'shutdown';

export interface JobRun {
  readonly startedAtMs: number;
  /** Resolves with the job's outcome once it has settled (or been abandoned). */
  readonly outcome: Promise<RunOutcome>;
  readonly abortReason: AbortReason | undefined;
  /** The job has settled: an abort now changes nothing, its outcome is being recorded. */
  readonly ended: boolean;
  abort(reason: AbortReason): void;
}

export interface StartRunOptions {
  job: JobFunction;
  doc: TaskDoc;
  timeoutMs: number | undefined;
  clock: Clock;
  /** The run's logger, made only if the job asks for one. */
  log(): Logger;
}

export function startRun(options: StartRunOptions): JobRun {
  let abortReason: AbortReason | undefined;
  let ended = false;
  const job = startJob(options.job, options.doc, { log: options.log, timeoutMs: options.timeoutMs, now: () => options.clock.now() });
  const outcome = job.outcome.then((result) => {
    ended = true;
    return result;
  });
  return {
    startedAtMs: job.startedAtMs,
    outcome,
    get abortReason() {
      return abortReason;
    },
    get ended() {
      return ended;
    },
    abort(reason) {
      if (abortReason) return;
      abortReason = reason;
      job.cancel(new Error(`run aborted: ${reason}`));
    },
  };
}

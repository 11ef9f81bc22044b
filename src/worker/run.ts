/**
 * One run of a claimed task: the job, its abort signal, and the lease heartbeat that keeps
 * other instances from taking the task over while the job is alive.
 */
import type { Clock } from '../clock';
import type { Logger } from '../log';
import type { JobFunction } from '../jobs/run-job';
import { runJob } from '../jobs/run-job';
import type { RunOutcome, TaskDoc } from '../types';

/** Why a run was stopped from outside. */
export type AbortReason = 'cancel' | 'deleted' | 'taken-over' | 'shutdown';

export interface RunHandle {
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
  log: Logger;
  /** Extend the lease; called every `heartbeatEveryMs` while the job runs. */
  heartbeat(): Promise<void>;
  heartbeatEveryMs: number;
}

export function startRun(options: StartRunOptions): RunHandle {
  const controller = new AbortController();
  let abortReason: AbortReason | undefined;
  let beat: NodeJS.Timeout | undefined;
  let finished = false;

  const scheduleBeat = (): void => {
    beat = options.clock.setTimeout(() => {
      options
        .heartbeat()
        .catch((err: Error) => options.log.warn(`lease heartbeat for ${options.doc._id} failed: ${err.message}`))
        .finally(() => {
          if (!finished) scheduleBeat();
        });
    }, options.heartbeatEveryMs);
  };

  const startedAtMs = options.clock.now();
  scheduleBeat();
  const outcome = runJob(options.job, options.doc, {
    signal: controller.signal,
    log: options.log,
    timeoutMs: options.timeoutMs,
  }).finally(() => {
    finished = true;
    if (beat) options.clock.clearTimeout(beat);
  });

  return {
    startedAtMs,
    outcome,
    get abortReason() {
      return abortReason;
    },
    get ended() {
      return finished;
    },
    abort(reason) {
      if (abortReason) return;
      abortReason = reason;
      controller.abort(new Error(`run aborted: ${reason}`));
    },
  };
}

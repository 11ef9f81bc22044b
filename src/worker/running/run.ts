/**
 * A claimed task's run, from its won claim to its finish write:
 *
 * 1. the start gate (`untilStart`): the claim is made ahead of the date (and, while runs end
 *    fast, ahead of a free run slot), so the run waits for the date itself (never early), a
 *    run slot, then its rate and concurrency limits; what it meets on the way (a stop, a user's
 *    request, a newer document, a pause) decides whether it starts;
 * 2. the job (`startRun`): when it started, how it ends, why it was stopped from outside (its
 *    lease is renewed beside it, lease-renewals.ts);
 * 3. the finish (`finishRun`): its outcome written as one write (task/next-state.ts decides
 *    what), on the task as this instance last saw it, and again on the task read back when a
 *    user's cancel, pause or resume came while it ran.
 *
 * What the instance does with the task afterwards (let it go, decide its next date, hand it
 * back) is the pipeline's.
 */
import type { Clock } from '../../clock';
import type { SafeEmitter } from '../../events';
import { startJob, type JobFunction, type StartedJob } from '../../jobs/run-job';
import type { Logger } from '../../log';
import type { WriteOutcome } from '../../store/types';
import type { RunOutcome, TaskDoc } from '../../types';
import type { WorkerEvents } from '../events';
import type { AbortReason, HeldTask, JobRun } from '../held-task';
import type { RunSlot } from '../timing/run-slots';

// ── 1. The start gate ────────────────────────────────────────────────────────────────────

/**
 * A claimed run that its rate limit makes wait longer than this (the live instances changed
 * after the claim) is handed back rather than kept claimed: its lease is not for waiting.
 */
const MAX_START_WAIT_MS = 5000;

export type StartVerdict =
  /** Start the job now. */
  | 'start'
  /** The instance is stopping: no new run starts. */
  | 'stopping'
  /** A user's request about the task came meanwhile: it goes first. */
  | 'request'
  /** A newer version of the task (a cancel, a reschedule) came meanwhile: decide it instead. */
  | 'overtaken'
  /** The worker name was paused meanwhile. */
  | 'paused'
  /** Its limit has no room for a while (the live instances changed since the claim). */
  | 'no-room'
  /** Claimed ahead, it found no free run slot in time (the runs before it ran long). */
  | 'no-slot';

export interface StartGateParts {
  clock: Clock;
  stopping(): boolean;
  paused(): boolean;
  /** A user's request waits for task `id`. */
  hasRequest(id: string): boolean;
  /** How long the limits ask the claimed run of `id` to wait before it starts (0: start now). */
  startWaitMs(id: string): number;
}

/**
 * Waits until the claimed `task` may start, or says why it will not. A run that need not wait
 * (its date has come, it holds its run slot, its limits have room) has its answer at once,
 * without a turn of the event loop: in a burst, every task of a wave is such a run.
 */
export function untilStart(task: HeldTask, parts: StartGateParts, slot: RunSlot): StartVerdict | Promise<StartVerdict> {
  if (parts.stopping()) return 'stopping';
  if (task.task!.dueMs > parts.clock.now() || slot.taken !== true || parts.startWaitMs(task.id) > 0) return waitToStart(task, parts, slot);
  return verdictNow(task, parts) ?? 'start';
}

async function waitToStart(task: HeldTask, parts: StartGateParts, slot: RunSlot): Promise<StartVerdict> {
  const { clock } = parts;
  const dateMs = task.task!.dueMs;
  for (let waitMs = dateMs - clock.now(); waitMs > 0 && !parts.stopping(); waitMs = dateMs - clock.now()) {
    await sleep(clock, waitMs);
  }
  // A claim ahead of the slots waits for the slot its turn brings (run-slots.ts).
  if (slot.taken !== true && !(await slot.taken)) return verdictNow(task, parts) ?? 'no-slot';
  const verdict = verdictNow(task, parts);
  if (verdict) return verdict;
  // The limits are checked here and the job called in the same turn: no other start of this
  // instance comes between (limiter.ts).
  for (let waitMs = parts.startWaitMs(task.id); waitMs > 0; waitMs = parts.startWaitMs(task.id)) {
    if (waitMs > MAX_START_WAIT_MS || parts.stopping() || parts.hasRequest(task.id)) return givenUp(task, parts);
    await sleep(clock, waitMs);
    if (parts.stopping() || parts.hasRequest(task.id) || task.overtaken) return givenUp(task, parts);
  }
  return 'start';
}

/** At its date: what keeps the run from starting, if anything. */
function verdictNow(task: HeldTask, parts: StartGateParts): StartVerdict | undefined {
  if (parts.hasRequest(task.id)) return 'request';
  if (parts.stopping()) return 'stopping';
  if (task.overtaken) return 'overtaken';
  if (parts.paused()) return 'paused';
  return undefined;
}

/** A run that will not start after waiting for its limits: what comes instead. */
function givenUp(task: HeldTask, parts: StartGateParts): StartVerdict {
  if (parts.stopping()) return 'stopping';
  if (parts.hasRequest(task.id)) return 'request';
  return task.overtaken ? 'overtaken' : 'no-room';
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

// ── 2. The job ───────────────────────────────────────────────────────────────────────────

export interface StartRunOptions {
  job: JobFunction;
  doc: TaskDoc;
  timeoutMs: number | undefined;
  clock: Clock;
  /** The run's logger, made only if the job asks for one. */
  log(): Logger;
}

export function startRun(options: StartRunOptions): JobRun {
  return new StartedRun(startJob(options.job, options.doc, { log: options.log, timeoutMs: options.timeoutMs, now: () => options.clock.now() }));
}

/** A started job, as the run sees it: when it ended, and why it was stopped from outside. */
class StartedRun implements JobRun {
  readonly startedAtMs: number;
  readonly outcome: Promise<RunOutcome>;
  abortReason: AbortReason | undefined;
  ended = false;

  constructor(private readonly job: StartedJob) {
    this.startedAtMs = job.startedAtMs;
    this.outcome = job.outcome.then((result) => {
      this.ended = true;
      return result;
    });
  }

  abort(reason: AbortReason): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.job.cancel(new Error(`run aborted: ${reason}`));
  }
}

// ── 3. The finish ────────────────────────────────────────────────────────────────────────

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
  /** Runs kept in `history`, as the settings say now (a reload may change them). */
  historyLimit(): number;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  write(task: HeldTask, doc: TaskDoc): Promise<WriteOutcome>;
}

/** Writes the end of `run` (whose job ended with `outcome` at `finishedAtMs`). */
export async function finishRun(task: HeldTask, run: JobRun, outcome: RunOutcome, finishedAtMs: number, parts: FinishParts): Promise<RunEnd> {
  const { log, events } = parts;
  // A renewal still in flight (the database away, say) goes first: the finish is written on
  // the `_rev` it leaves, and it may have learnt that the run was taken over meanwhile.
  if (task.renewing) await task.renewing;
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
    const { doc, result } = task.finish(outcome, record, { historyLimit: parts.historyLimit() });
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

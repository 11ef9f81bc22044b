/**
 * Between a won claim and the job's start: the claim is made ahead of the date, so the run waits
 * for the date itself (never early), then for its rate and concurrency limits. What it meets on
 * the way decides whether it starts at all.
 */
import type { Clock } from '../../clock';
import type { HeldTask } from '../held-task';

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
  | 'no-room';

export interface StartGateParts {
  clock: Clock;
  stopping(): boolean;
  paused(): boolean;
  /** A user's request waits for task `id`. */
  hasRequest(id: string): boolean;
  /** How long the limits ask the claimed run of `id` to wait before it starts (0: start now). */
  startWaitMs(id: string): number;
}

/** Waits until the claimed `task` may start, or says why it will not. */
export async function untilStart(task: HeldTask, parts: StartGateParts): Promise<StartVerdict> {
  const { clock } = parts;
  if (parts.stopping()) return 'stopping';
  const dateMs = task.task!.dueMs;
  for (let waitMs = dateMs - clock.now(); waitMs > 0 && !parts.stopping(); waitMs = dateMs - clock.now()) {
    await sleep(clock, waitMs);
  }
  if (parts.hasRequest(task.id)) return 'request';
  if (parts.stopping()) return 'stopping';
  if (task.overtaken) return 'overtaken';
  if (parts.paused()) return 'paused';
  // The limits are checked here and the job called in the same turn: no other start of this
  // instance comes between (limiter.ts).
  for (let waitMs = parts.startWaitMs(task.id); waitMs > 0; waitMs = parts.startWaitMs(task.id)) {
    if (waitMs > MAX_START_WAIT_MS || parts.stopping() || parts.hasRequest(task.id)) return givenUp(task, parts);
    await sleep(clock, waitMs);
    if (parts.stopping() || parts.hasRequest(task.id) || task.overtaken) return givenUp(task, parts);
  }
  return 'start';
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

/**
 * Users' requests about a task (`request:` documents in the control database, control-link.ts):
 * a cancel, delete, reschedule, pause or run now that a user's own write could not land because
 * this instance rewrites the task too fast (a task repeating every few milliseconds). The
 * instance responsible for the task — the one holding its lease, or, with no holder, its owner —
 * carries it out with its own writes, at a moment it writes nothing else to the task, so it
 * cannot lose a race against them. This file says who is responsible, what waits, and what each
 * request writes; the pipeline carries them out.
 */
import { isLease, leasedBy } from '../../task/decide';
import type { TaskRequest } from '../../store/control';
import type { WriteOutcome } from '../../store/types';
import type { TaskDoc } from '../../types';
import type { HeldTask } from '../held-task';

/** Request writes tried again when the task changed meanwhile. */
const REQUEST_TRIES = 5;

export class WaitingRequests {
  /** Requests waiting for their task to be idle here (task id → request). */
  private readonly waiting = new Map<string, TaskRequest>();

  /** A request waits for task `id`. */
  has(id: string): boolean {
    return this.waiting.has(id);
  }

  /** The request for task `id`, still waiting. */
  get(id: string): TaskRequest | undefined {
    return this.waiting.get(id);
  }

  wait(request: TaskRequest): void {
    this.waiting.set(request.task, request);
  }

  /** The request for task `id`, no longer waiting. */
  take(id: string): TaskRequest | undefined {
    const request = this.waiting.get(id);
    this.waiting.delete(id);
    return request;
  }
}

/**
 * This instance carries a request about its task out when it runs it, holds its lease, or holds
 * it unleased as its owner (`owns`); a task it does not hold, when it is the task's owner.
 */
export function isResponsible(held: HeldTask | undefined, instance: string, owns: boolean): boolean {
  if (!held) return owns;
  return held.run !== undefined || leasedBy(held.doc, instance) || (!isLease(held.doc.lease) && owns);
}

/**
 * What to do now with a request waiting for its task, as the task is here. A run ends as the
 * user asks: a cancel aborts it (recorded as canceled), a pause lets it finish (the task stays
 * paused), a delete aborts it and deletes the task once it is over, a reschedule or a run now
 * lets it finish and then moves the task or runs it again.
 */
export type RequestStep =
  /** The task is idle here, or not held: write the request now. */
  | 'now'
  /** A write or a claim of the task is in flight: at its next idle moment. */
  | 'later'
  /** After the run's end has been written (a reschedule, a run now; a run whose job has ended). */
  | 'after-run'
  /** Abort the run, then delete the task once its end is written. */
  | 'abort-run'
  /** Carried out on the run itself: its job is aborted, the run recorded as canceled. */
  | 'cancel-run'
  /** Carried out on the run itself: it finishes, and its finish keeps the task paused. */
  | 'pause-run';

export function requestStep(request: TaskRequest, held: HeldTask | undefined): RequestStep {
  const run = held?.run;
  if (run && run.ended) return 'after-run';
  if (run) {
    if (request.action === 'cancel') return 'cancel-run';
    if (request.action === 'pause') return 'pause-run';
    return request.action === 'delete' ? 'abort-run' : 'after-run';
  }
  return held && !held.idle ? 'later' : 'now';
}

/**
 * Writes what `request` asks on the task as it is (`current`), again on the task read back
 * when another write came first, a few times. Returns the document written, or undefined when
 * there was nothing to write or it could not be written (`failed` says why).
 */
export async function carryOutRequest(
  request: TaskRequest,
  current: TaskDoc | null,
  write: (next: TaskDoc) => Promise<WriteOutcome>,
): Promise<{ written?: TaskDoc; failed?: Error }> {
  for (let attempt = 0; attempt < REQUEST_TRIES && current; attempt++) {
    const next = requestedDoc(current, request);
    if (!next) return {};
    const outcome = await write(next);
    if (outcome.kind === 'written') return { written: outcome.doc };
    if (outcome.kind === 'failed') return { failed: outcome.error };
    current = outcome.fresh;
  }
  return {};
}

/**
 * What a request asks to be written, on the task as it is now (no run of it is alive here: a
 * lease it carries is this instance's claim, given up); null when there is nothing to write.
 */
export function requestedDoc(current: TaskDoc, request: TaskRequest): TaskDoc | null {
  const { lease: _givenUp, ...rest } = current;
  const status = String(current.status);
  switch (request.action) {
    case 'cancel':
      return ['done', 'error', 'canceled', 'cancel'].includes(status) ? null : { ...rest, status: 'cancel' };
    case 'delete':
      return { _id: current._id, _rev: current._rev, _deleted: true };
    case 'pause':
      return ['done', 'error', 'canceled', 'paused'].includes(status) ? null : { ...rest, status: 'paused' };
    case 'reschedule':
      if (request.date === undefined) return null;
      return { ...rest, status: ['done', 'error', 'canceled'].includes(status) ? 'waiting' : 'reschedule', date: request.date };
    case 'run-now':
      if (request.date === undefined || ['canceled', 'cancel', 'paused'].includes(status)) return null;
      return { ...rest, status: status === 'reschedule' ? status : 'waiting', run_now: request.date };
  }
}

/**
 * Users' requests about a task (`request:` documents in the control database, control-link.ts):
 * a cancel, delete, reschedule, pause or run now that a user's own write could not land because
 * this instance rewrites the task too fast (a task repeating every few milliseconds). The
 * instance responsible for the task — the one holding its lease, or, with no holder, its owner —
 * carries it out with its own writes, at a moment it writes nothing else to the task, so it
 * cannot lose a race against them.
 *
 * A run ends as the user asks: a cancel aborts it (recorded as canceled), a pause lets it finish
 * (the task stays paused), a delete aborts it and deletes the task once it is over, a reschedule
 * or a run now lets it finish and then moves the task or runs it again.
 */
import { isLease, leasedBy } from '../../task/decide';
import type { TaskRequest } from '../../store/schema';
import type { TaskDoc } from '../../types';
import type { HeldTask } from '../held-task';
import type { HeldTasks } from '../held-tasks';
import type { TaskWriter } from '../writer';

/** Request writes tried again when the task changed meanwhile. */
const REQUEST_TRIES = 5;

export interface RequestDeskParts {
  instance: string;
  /** Task `id` is this instance's share. */
  owns(id: string): boolean;
  tasks: Pick<HeldTasks, 'get' | 'idle' | 'forget'>;
  writer: Pick<TaskWriter, 'writeOne'>;
  /** The task as the database holds it now (null: deleted). */
  read(id: string): Promise<TaskDoc | null>;
  /** The request is carried out (or cannot be): its document goes. */
  remove(request: TaskRequest): void;
  /** The run of task `id` under way, settling once its end has been written and acted on. */
  runEnd(id: string): Promise<void> | undefined;
  log(line: string): void;
}

export class RequestDesk {
  /** Requests waiting for their task to be idle here (task id → request). */
  private readonly waiting = new Map<string, TaskRequest>();

  constructor(private readonly parts: RequestDeskParts) {}

  /** A request waits for task `id`. */
  has(id: string): boolean {
    return this.waiting.has(id);
  }

  /** A request came: it waits here if this instance is responsible for its task. True when it does. */
  received(request: TaskRequest): boolean {
    const held = this.parts.tasks.get(request.task);
    const responsible = held
      ? held.run !== undefined || leasedBy(held.doc, this.parts.instance) || (!isLease(held.doc.lease) && this.parts.owns(request.task))
      : this.parts.owns(request.task);
    if (responsible) this.waiting.set(request.task, request);
    return responsible;
  }

  /**
   * Carry out the request waiting for task `id` if the task allows it now (idle here, or not
   * held; a run it can act on). Resolves with the documents to decide afterwards: the task as
   * written, or as held when nothing was to be written. A request that must wait for a run's end
   * is served again then (`again`).
   */
  async serve(id: string, again: () => void): Promise<TaskDoc[]> {
    const request = this.waiting.get(id);
    if (!request) return [];
    const task = this.parts.tasks.get(id);
    const run = task?.run;
    if (run && (run.ended || request.action === 'delete' || request.action === 'reschedule' || request.action === 'run-now')) {
      // After the run's end is written (a delete aborts the run first).
      if (!run.ended && request.action === 'delete') run.abort('deleted');
      void this.parts.runEnd(id)?.finally(again);
      return [];
    }
    if (!run && task && !task.idle) return []; // at its next idle moment
    this.waiting.delete(id);
    try {
      if (run && request.action === 'cancel') run.abort('cancel');
      else if (run && request.action === 'pause') task!.pauseRun();
      else return await this.write(request, task);
      return [];
    } finally {
      this.parts.remove(request);
    }
  }

  /** The request written on the task as it is (held here and idle, or read), again on the task read back. */
  private async write(request: TaskRequest, held: HeldTask | undefined): Promise<TaskDoc[]> {
    const { tasks, writer, log } = this.parts;
    let current: TaskDoc | null = held ? held.doc : await this.parts.read(request.task).catch(() => null);
    if (!current) return [];
    const task = tasks.idle(current);
    for (let attempt = 0; attempt < REQUEST_TRIES && current; attempt++) {
      const next = requestedDoc(current, request);
      if (!next) break;
      const outcome = await writer.writeOne(task, 'request', task.write('request', next));
      task.wrote(outcome);
      if (outcome.kind === 'written') {
        const newer = task.takeNewer();
        tasks.forget(task.id);
        return newer ? [outcome.doc, newer] : [outcome.doc];
      }
      if (outcome.kind === 'failed') {
        log(`task ${request.task}: the ${request.action} request could not be written: ${outcome.error.message}`);
        tasks.forget(task.id);
        return [];
      }
      current = outcome.fresh;
    }
    // Nothing (more) to write: a task held here goes on as it is; one read for this is let go.
    if (held && task.idle) return [task.doc];
    tasks.forget(task.id);
    return [];
  }
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

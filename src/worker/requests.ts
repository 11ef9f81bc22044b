/**
 * Users' requests about a task (`request:` documents in the control database, control-link.ts):
 * a cancel, delete, reschedule, pause or run now that a user's own write could not land because
 * this instance rewrites the task too fast (a task repeating every few milliseconds). The
 * instance responsible for the task — the one holding its lease, or, with no holder, its owner —
 * carries it out with its own writes, at a moment it writes nothing else to the task, so it
 * cannot lose a race against them.
 */
import { isLease, leasedBy } from '../task/decide';
import type { TaskRequest } from '../store/control';
import type { TaskDoc } from '../types';
import type { Entry } from './entry';
import type { WorkerCore } from './worker-core';

export class RequestDesk {
  /** Requests waiting for their task to be idle here (task id → request). */
  private readonly waiting = new Map<string, TaskRequest>();

  constructor(private readonly core: WorkerCore) {}

  /** A request waits for task `id`. */
  has(id: string): boolean {
    return this.waiting.has(id);
  }

  /** A request came through the control feed. */
  received(request: TaskRequest): void {
    const { core } = this;
    if (core.stopping) return;
    const entry = core.table.get(request.task);
    const responsible = entry
      ? entry.run !== undefined || leasedBy(entry.doc, core.instance) || (!isLease(entry.doc.lease) && core.control.owns(request.task))
      : core.control.owns(request.task);
    if (!responsible) return;
    this.waiting.set(request.task, request);
    this.serve(request.task);
  }

  /** Carry out the request waiting for task `id`, now if the task is idle here, else at its next idle moment. */
  serve(id: string): void {
    const { core } = this;
    const request = this.waiting.get(id);
    if (!request || core.stopping) return;
    const entry = core.table.get(id);
    if (entry?.run && entry.run.ended) {
      // The job has ended and its outcome is being written: the request comes after it.
      void core.slots.runOf(id)?.finally(() => this.serve(id));
      return;
    }
    if (entry?.run) {
      // A run ends as the user asks: a cancel aborts it (recorded as canceled), a pause lets it
      // finish (the task stays paused), a delete aborts it and deletes the task once it is over,
      // a reschedule or a run now lets it finish and then moves the task or runs it again.
      if (request.action === 'delete' || request.action === 'reschedule' || request.action === 'run-now') {
        if (request.action === 'delete') entry.run.abort('deleted');
        void core.slots.runOf(id)?.finally(() => this.serve(id));
        return;
      }
      if (request.action === 'cancel') entry.run.abort('cancel');
      if (request.action === 'pause') entry.doc = { ...entry.doc, status: 'paused' };
      this.waiting.delete(id);
      this.removeDocument(request);
      return;
    }
    if (entry && (entry.busy || entry.state === 'claiming' || entry.state === 'running')) return;
    this.waiting.delete(id);
    void this.carryOut(request, entry).finally(() => this.removeDocument(request));
  }

  /** The request is carried out (or cannot be): its document goes. */
  private removeDocument(request: TaskRequest): void {
    void this.core.store.control.remove(request.id, request.rev).catch(() => false);
  }

  private async carryOut(request: TaskRequest, entry: Entry | undefined): Promise<void> {
    const { core } = this;
    if (entry) core.table.park(entry);
    let current: TaskDoc | null | undefined = entry?.doc;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (current === undefined) current = await core.writer.reread(request.task).catch(() => undefined);
      if (!current) return;
      const next = requestedDoc(current, request);
      if (!next) return;
      const outcome = await core.writer.write(next, 'request');
      if (outcome.kind === 'written') {
        core.ingest(outcome.doc);
        return;
      }
      if (outcome.kind === 'failed') {
        core.log.error(`task ${request.task}: the ${request.action} request could not be written: ${outcome.error.message}`);
        return;
      }
      current = outcome.fresh;
    }
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

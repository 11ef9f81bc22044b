/**
 * The life of a claimed task's run in one instance: the job with its lease heartbeat, what
 * newer versions of the task mean for it (a cancel or delete aborts it), and the one write that
 * records its outcome. What the instance then does with the task (forget it, decide it again,
 * hand it back) is the worker's business; the runner says how the run ended.
 */
import type { Clock } from '../clock';
import type { SafeEmitter } from '../events';
import { UnknownJobError } from '../errors';
import type { JobRegistry } from '../jobs/loader';
import type { JobFunction } from '../jobs/run-job';
import type { Logger } from '../log';
import { leasedBy } from '../task/decide';
import type { ParsedTask } from '../task/validate';
import { extendLease, runResult, type WriteContext } from '../task/writes';
import type { RunOutcome, TaskDoc } from '../types';
import { isNewer, isRivalClaimBranch, type Entry } from './entry';
import { startRun, type AbortReason, type RunHandle } from './run';
import type { TaskWriter } from './task-writer';
import type { WorkerEvents } from './worker-events';

export interface RunnerOptions {
  worker: string;
  instance: string;
  writer: TaskWriter;
  jobs: JobRegistry;
  clock: Clock;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  /** The database's time, for leases. */
  dbNow(): number;
  leaseMs: number;
  graceMs: number;
  /** The default job timeout; 0 for none. */
  timeoutMs: number;
  historyLimit: number;
}

/** How a run of a claimed task ended, for the worker to act on. */
export type RunEnd =
  /** The outcome is written; `doc` is the task as written. */
  | { kind: 'recorded'; doc: TaskDoc }
  /** Stopped by the shutdown's grace period: the task goes back to `waiting`. */
  | { kind: 'shutdown' }
  /** Not recorded: deleted, taken over, changed by another writer, or the write was refused. `doc` is its newest version. */
  | { kind: 'abandoned'; doc: TaskDoc | undefined };

/** Finish writes tried again when the task changed under the run in a way the run answers. */
const FINISH_TRIES = 6;

export class Runner {
  constructor(private options: RunnerOptions) {}

  /** A reload: what every run from now on uses. */
  reconfigure(update: Partial<Pick<RunnerOptions, 'jobs' | 'timeoutMs' | 'historyLimit'>>): void {
    this.options = { ...this.options, ...update };
  }

  /** Runs the claimed `entry` now; `jobEnded` is called as soon as the job itself has settled. */
  async run(entry: Entry, jobEnded: () => void): Promise<RunEnd> {
    const task = entry.task!;
    const { options } = this;
    // A reload may have taken the job away since the task was claimed.
    const job: JobFunction = options.jobs.resolve(task.job.name) ?? (() => Promise.reject(new UnknownJobError(task.job.name)));
    const run = startRun({
      job,
      doc: entry.doc,
      timeoutMs: task.timeoutMs ?? (options.timeoutMs || undefined),
      clock: options.clock,
      log: options.log.child({ component: `task ${entry.id}` }),
      heartbeat: () => this.extendLease(entry),
      heartbeatEveryMs: Math.max(100, Math.floor(options.leaseMs / 3)),
    });
    entry.run = run;
    options.events.emit('task:started', { id: entry.id, job: task.job.name, lateMs: run.startedAtMs - task.dueMs });
    const outcome = await run.outcome;
    jobEnded();
    try {
      return await this.finish(entry, task, run, outcome);
    } finally {
      entry.run = undefined;
    }
  }

  /** A newer version of a task this instance is running: a cancel or delete aborts the job. */
  update(entry: Entry, doc: TaskDoc): void {
    const run = entry.run;
    if (!run) return;
    if (doc._deleted) {
      run.abort('deleted');
      return;
    }
    if (!isNewer(doc, entry.doc) || isRivalClaimBranch(doc, entry.doc)) return;
    entry.doc = doc;
    if (doc.status === 'cancel') run.abort('cancel');
    // A user's pause lets the run finish; its result keeps the task paused (writes.runResult).
    else if (doc.status === 'paused') return;
    // A user resumed it (`waiting`, our lease kept) before the run ended: the run goes on, and
    // its next heartbeat or its result says what the task is.
    else if (doc.status === 'waiting' && leasedBy(doc, this.options.instance)) {
      if (!entry.leaseWrite) void this.extendLease(entry).catch(() => undefined);
      return;
    }
    else if (doc.status !== 'running' || !leasedBy(doc, this.options.instance)) run.abort('taken-over');
  }

  private writeContext(): WriteContext {
    const { instance, leaseMs, graceMs } = this.options;
    return { instance, nowMs: this.options.dbNow(), leaseMs, graceMs };
  }

  /** The heartbeat: one write moving `lease.expires_at` on, unless one is still in flight. */
  private extendLease(entry: Entry): Promise<void> {
    // A task paused while it runs keeps its lease (with `paused`) until the run's result is written.
    const status = entry.doc.status;
    if (entry.leaseWrite || !entry.run || entry.run.abortReason || (status !== 'running' && status !== 'paused' && status !== 'waiting')) return Promise.resolve();
    const write = this.writeLease(entry).finally(() => {
      entry.leaseWrite = undefined;
    });
    entry.leaseWrite = write;
    return write;
  }

  private async writeLease(entry: Entry): Promise<void> {
    const outcome = await this.options.writer.write(extendLease(entry.doc, this.writeContext()), 'lease');
    if (outcome.kind === 'written') {
      if (isNewer(outcome.doc, entry.doc)) entry.doc = outcome.doc;
      return;
    }
    if (outcome.kind === 'failed') throw outcome.error;
    // Someone wrote the task while it ran: a cancel, a delete, or (after an outage longer than
    // the lease) another instance that took the run over.
    if (!entry.run) return;
    if (!outcome.fresh) entry.run.abort('deleted');
    else this.update(entry, outcome.fresh);
  }

  private async finish(entry: Entry, task: ParsedTask, run: RunHandle, outcome: RunOutcome): Promise<RunEnd> {
    const { options } = this;
    const id = entry.id;
    const finishedAtMs = options.clock.now();
    // A heartbeat still in flight (the database away, say) goes first: the finish is written
    // on the `_rev` it leaves, and it may have learnt that the run was taken over meanwhile.
    await entry.leaseWrite?.catch(() => undefined);
    const reason: AbortReason | undefined = run.abortReason;
    if (reason === 'deleted' || reason === 'taken-over') {
      options.log.warn(`task ${id}: run abandoned (${reason === 'deleted' ? 'the task was deleted' : 'another writer changed the task'})`);
      return { kind: 'abandoned', doc: reason === 'taken-over' ? entry.doc : undefined };
    }
    if (reason === 'shutdown') return { kind: 'shutdown' };

    const runRecord = { startedAtMs: run.startedAtMs, finishedAtMs, worker: options.worker, instance: options.instance };
    // A user's cancel seen after the job settled (while a lease write was on its way, say) is a
    // cancel all the same: the run is recorded as canceled, as when it comes during the job.
    let result: RunOutcome = entry.doc.status === 'cancel' ? { kind: 'canceled' } : outcome;
    for (let attempt = 1; ; attempt++) {
      const next = runResult(entry.doc, task, result, runRecord, { historyLimit: options.historyLimit });
      const written = await options.writer.write(next, 'result');
      if (written.kind === 'written') {
        entry.doc = written.doc;
        options.events.emit('task:finished', {
          id,
          status: String(written.doc.status),
          durationMs: runRecord.finishedAtMs - runRecord.startedAtMs,
          outcome: result.kind,
          ...(written.doc.status === 'waiting' ? { date: String(written.doc.run_now ?? written.doc.date) } : {}),
          ...(result.kind === 'failure' || result.kind === 'retry' ? { error: result.error.message } : {}),
        });
        return { kind: 'recorded', doc: written.doc };
      }
      if (written.kind === 'failed') {
        options.log.error(`task ${id}: could not record the run: ${written.error.message}`);
        return { kind: 'abandoned', doc: undefined };
      }
      // Lost the finish write: someone changed the task while it ran.
      const fresh = written.fresh;
      const mine = !!fresh && leasedBy(fresh, options.instance);
      if (fresh && attempt < FINISH_TRIES) {
        if (fresh.status === 'running' && mine) {
          entry.doc = fresh;
          continue;
        }
        // A user's cancel during the run: the run is recorded as canceled.
        if (fresh.status === 'cancel' && (mine || fresh.lease === undefined)) {
          entry.doc = fresh;
          result = { kind: 'canceled' };
          continue;
        }
        // A user's pause during the run (and their resume, our lease kept): recorded, and the
        // task stays as the user left it.
        if (fresh.status === 'paused' || (fresh.status === 'waiting' && mine)) {
          entry.doc = fresh;
          continue;
        }
      }
      options.log.warn(`task ${id}: the run ended but another writer had changed the task; its result is not recorded`);
      return { kind: 'abandoned', doc: fresh ?? undefined };
    }
  }
}

/**
 * The life of a claimed task in one instance: wait for its date (claims are made ahead of
 * it), run the job with the lease heartbeat, and record the outcome with one write. What the
 * instance then does with the task (forget it, decide it again, hand it back) is the worker's
 * business; the runner says how the run ended.
 */
import { backoffMs, delay, type Clock } from '../clock';
import { CouchRequestError } from '../errors';
import type { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import type { TaskStore } from '../store/types';
import { nextState } from '../task/next-state';
import type { ParsedTask } from '../task/validate';
import type { RunOutcome, TaskDoc } from '../types';
import { isLease, isOwnWrite } from './decide';
import { hasNewerPending, isNewer, type Entry } from './entry';
import { startRun, type AbortReason, type RunHandle } from './run';
import type { WorkerEvents } from './worker-events';

export interface RunnerOptions {
  worker: string;
  instance: string;
  store: TaskStore;
  jobs: JobRegistry;
  clock: Clock;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  leaseMs: number;
  /** The default job timeout; 0 for none. */
  timeoutMs: number;
  historyLimit: number;
  isStopping(): boolean;
  /** Every write goes through this, so a stop can wait for the ones in flight. */
  tracked<T>(write: Promise<T>): Promise<T>;
}

/** How a run of a claimed task ended, for the worker to act on. */
export type RunEnd =
  /** The date was not reached: the worker is stopping, or a newer document came meanwhile. */
  | { kind: 'not-started' }
  /** The outcome is written; `doc` is the task as written. */
  | { kind: 'recorded'; doc: TaskDoc }
  /** Stopped by the shutdown's grace period: the task goes back to `waiting`. */
  | { kind: 'shutdown' }
  /** Not recorded: deleted, taken over, changed by another writer, or the write was refused. `doc` is its newest version. */
  | { kind: 'abandoned'; doc: TaskDoc | undefined };

export class Runner {
  constructor(private readonly options: RunnerOptions) {}

  /** Runs the claimed `entry`; `jobEnded` is called as soon as the job itself has settled. */
  async run(entry: Entry, jobEnded: () => void): Promise<RunEnd> {
    const task = entry.task!;
    if (!(await this.untilDate(entry, task.dateMs))) return { kind: 'not-started' };
    const { options } = this;
    const job = options.jobs.resolve(task.job.name)!;
    entry.state = 'running';
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
    options.events.emit('task:started', { id: entry.id, job: task.job.name, lateMs: run.startedAtMs - task.dateMs });
    // A document that came while the claim was in flight (a cancel, say) reaches the run now.
    const pending = entry.pending;
    entry.pending = undefined;
    if (pending && isNewer(pending, entry.doc)) this.update(entry, pending);
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
    entry.doc = doc;
    const mine = isLease(doc.lease) && doc.lease.instance === this.options.instance;
    if (doc.status === 'cancel') run.abort('cancel');
    else if (doc.status !== 'running' || !mine) run.abort('taken-over');
  }

  /**
   * Claimed ahead of the date: wait for the date itself (never early). A newer version of the
   * task seen meanwhile (a cancel, a reschedule) is decided by the worker instead.
   */
  private async untilDate(entry: Entry, dateMs: number): Promise<boolean> {
    const { clock } = this.options;
    entry.busy = true;
    try {
      for (let wait = dateMs - clock.now(); wait > 0 && !this.options.isStopping(); wait = dateMs - clock.now()) {
        await new Promise<void>((resolve) => clock.setTimeout(resolve, wait));
      }
    } finally {
      entry.busy = false;
    }
    return !this.options.isStopping() && !hasNewerPending(entry);
  }

  private freshLease(): { instance: string; expires_at: string } {
    return { instance: this.options.instance, expires_at: iso(this.options.store.dbNow() + this.options.leaseMs) };
  }

  /** The heartbeat: one write moving `lease.expires_at` on, unless one is still in flight. */
  private extendLease(entry: Entry): Promise<void> {
    if (entry.leaseWrite || !entry.run || entry.run.abortReason) return Promise.resolve();
    const write = this.writeLease(entry).finally(() => {
      entry.leaseWrite = undefined;
    });
    entry.leaseWrite = write;
    return write;
  }

  private async writeLease(entry: Entry): Promise<void> {
    const { store } = this.options;
    const sent: TaskDoc = { ...entry.doc, lease: this.freshLease() };
    const result = await this.options.tracked(store.write(sent, { lane: 'hold' }));
    if (result.ok) {
      if (isNewer(result.doc, entry.doc)) entry.doc = result.doc;
      return;
    }
    // Someone wrote the task while it ran: a cancel, a delete, or (after an outage longer than
    // the lease) another instance that took the run over.
    const fresh = await store.get(entry.id);
    if (fresh && !result.contested && isOwnWrite(fresh, sent)) {
      entry.doc = fresh;
      return;
    }
    if (!entry.run) return;
    if (!fresh) entry.run.abort('deleted');
    else this.update(entry, fresh);
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
    let result = outcome;
    for (let attempt = 0; ; attempt++) {
      const next = nextState(entry.doc, task, result, runRecord, { historyLimit: options.historyLimit });
      let written: TaskDoc | undefined;
      let fresh: TaskDoc | null | undefined;
      let contested = false;
      entry.busy = true;
      try {
        const response = await options.tracked(options.store.write(next, { lane: 'run' }));
        if (response.ok) written = response.doc;
        else {
          // Lost the finish write: someone changed the task while it ran, or the write landed
          // during an outage and only its answer was lost (never so for a contested one).
          contested = response.contested !== undefined;
          fresh = await this.getWithRetry(id);
        }
      } catch (err) {
        options.log.error(`task ${id}: could not record the run: ${(err as Error).message}`);
        return { kind: 'abandoned', doc: undefined };
      } finally {
        entry.busy = false;
      }
      if (fresh && !contested && isOwnWrite(fresh, next)) written = fresh;
      if (written) {
        entry.doc = written;
        options.events.emit('task:finished', {
          id,
          status: String(written.status),
          durationMs: runRecord.finishedAtMs - runRecord.startedAtMs,
          ...(written.status === 'waiting' ? { date: String(written.date) } : {}),
          ...(result.kind === 'failure' ? { error: result.error.message } : {}),
        });
        return { kind: 'recorded', doc: written };
      }
      const mine = fresh && isLease(fresh.lease) && fresh.lease.instance === options.instance;
      if (fresh && fresh.status === 'running' && mine && attempt < 5) {
        entry.doc = fresh;
        continue;
      }
      if (fresh && fresh.status === 'cancel' && (mine || !isLease(fresh.lease)) && attempt < 5) {
        entry.doc = fresh;
        result = { kind: 'canceled' };
        continue;
      }
      options.log.warn(`task ${id}: the run ended but another writer had changed the task; its result is not recorded`);
      return { kind: 'abandoned', doc: fresh ?? undefined };
    }
  }

  private async getWithRetry(id: string): Promise<TaskDoc | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.options.store.get(id);
      } catch (err) {
        if (!(err instanceof CouchRequestError) || !err.transient || attempt > 20) throw err;
        await delay(backoffMs(attempt));
      }
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

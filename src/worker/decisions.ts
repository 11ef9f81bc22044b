/**
 * What an instance does with a task document: `decide()` (task/decide.ts, pure) says what, and
 * this carries it out — hold it in the timer, write a hold or a verdict, wait for dependencies,
 * take an expired run over. Every document, from any source, is decided here.
 */
import type { AfterConfig } from '../config';
import type { JobRegistry } from '../jobs/loader';
import { decide, isLease, type DecideContext } from '../task/decide';
import * as writes from '../task/writes';
import type { TaskDoc } from '../types';
import type { DependencyWatch } from './dependency-watch';
import { isNewer } from './entry';
import type { WorkerCore } from './worker-core';

/** How long a task may be due ahead before it is worth a `scheduled` write. */
const DUE_SOON_MS = 1000;

export interface DecisionSources {
  worker: string;
  /** The configuration now (a reload replaces it). */
  config(): AfterConfig;
  /** The jobs now (a reload replaces them). */
  jobs(): JobRegistry;
  dependencies: DependencyWatch;
}

export class Decisions {
  constructor(
    private readonly core: WorkerCore,
    private readonly sources: DecisionSources,
  ) {}

  /** Every document, from any source, enters here. */
  ingest(doc: TaskDoc): void {
    const entry = this.core.table.get(doc._id);
    if (entry) {
      if (!isNewer(doc, entry.doc)) return;
      if (entry.run) return this.core.runner.update(entry, doc);
      if (entry.busy) {
        if (!entry.pending || isNewer(doc, entry.pending)) entry.pending = doc;
        return;
      }
    } else if (this.core.table.isStale(doc, this.core.clock.now())) {
      return;
    }
    this.apply(doc);
  }

  /** Decide `doc` now and carry the decision out. */
  apply(doc: TaskDoc): void {
    const { core } = this;
    if (core.stopping) return;
    const context = this.context();
    if (core.table.isStoodDown(doc, context.nowMs)) return;
    const decision = decide(doc, context);
    const id = doc._id;
    if (decision.kind !== 'wait-for') this.sources.dependencies.unwatch(id);
    switch (decision.kind) {
      case 'drop':
        core.table.forget(id);
        return;
      case 'own-run':
        // Mostly the feed's late echo of this instance's own claim. A claim that landed with
        // its answer lost is recognised by the TaskWriter; one this instance lost track of
        // otherwise has its lease expire, and the sweep takes it over (decide: an expired own lease).
        return;
      case 'mark-waiting':
        void core.writes.writeAndForget(doc, writes.markWaiting(doc), 'mark-waiting');
        return;
      case 'invalid':
        core.table.forget(id);
        void core.writes.verdict(doc, writes.invalid(doc, decision.field, decision.message), 'error');
        return;
      case 'cancel':
        core.table.forget(id);
        void core.writes.verdict(doc, writes.canceled(doc), 'canceled');
        return;
      case 'dependency-failed':
        core.table.forget(id);
        void core.writes.verdict(doc, writes.dependencyFailed(doc, decision.message), 'error');
        return;
      default:
        break;
    }
    const task = decision.task;
    const jobs = this.sources.jobs();
    if (!jobs.resolve(task.job.name)) {
      core.table.forget(id);
      const message = `job.name: unknown job ${quote(task.job.name)} (not found in the jobs folder ${jobs.dir})`;
      void core.writes.verdict(doc, writes.invalid(doc, 'job.name', message), 'error');
      return;
    }
    switch (decision.kind) {
      case 'hold':
        core.table.hold(doc, task, decision.backup);
        return;
      case 'keep':
        core.table.hold(doc, task, false);
        return;
      case 'schedule':
        void core.writes.schedule(doc, task);
        return;
      case 'wait-for': {
        // Out of the timer until its dependencies change (dependency-watch.ts).
        const entry = core.table.entry(doc, task);
        core.table.park(entry);
        entry.backup = false;
        this.sources.dependencies.watch(id, decision.watch);
        return;
      }
      case 'take-over-run': {
        if (decision.backup && isLease(doc.lease) && core.control.membership.live.includes(doc.lease.instance)) {
          // Its holder let the lease run out: it is gone, whatever its last heartbeat says. The
          // tasks of its share (this one perhaps) are split among the others at once.
          core.control.suspect(doc.lease.instance);
          if (!core.control.membership.live.includes(doc.lease.instance)) return this.apply(doc);
        }
        if (decision.backup) {
          // Another instance's share: its owner takes the run over at once; this one only if
          // the run is still not taken a grace period later.
          core.table.hold(doc, task, true, core.clock.now());
          return;
        }
        core.log.warn(`task ${id}: the lease of ${describeLease(doc)} expired; taking the run over`);
        const entry = core.table.entry(doc, task);
        entry.backup = false;
        core.table.timer.remove(id);
        core.table.makeReady(entry);
        core.slots.pump();
        return;
      }
    }
  }

  /**
   * The worker name was resumed. During the pause no owner could claim its share, so every
   * backup's grace has run out: backups wait one grace period again, from now, and the owners
   * take their own tasks first rather than every instance racing for all of them.
   */
  resumed(): void {
    for (const entry of this.core.table.values()) {
      if (!entry.backup || !entry.task || entry.busy || entry.run) continue;
      if (entry.state === 'held' || entry.state === 'ready') this.core.table.hold(entry.doc, entry.task, true, this.core.clock.now());
    }
    this.core.slots.pump();
  }

  /** The tasks these tasks wait for changed: decide them again. */
  redecideWaiting(ids: readonly string[]): void {
    for (const id of ids) {
      const entry = this.core.table.get(id);
      if (!entry || entry.run || entry.busy || entry.state !== 'held') continue;
      this.apply(entry.doc);
    }
  }

  /** The live instances changed: tasks held but not claimed may now be another's share, or ours. */
  redecideHeld(): void {
    for (const entry of [...this.core.table.values()]) {
      if (entry.run || entry.busy || entry.state === 'claiming' || entry.state === 'running') continue;
      this.apply(entry.doc);
    }
  }

  private context(): DecideContext {
    const { core } = this;
    const config = this.sources.config();
    const nowMs = core.store.dbNow();
    return {
      worker: this.sources.worker,
      instance: core.instance,
      nowMs,
      horizonEndMs: nowMs + config.worker.horizon_ms,
      dueSoonEndMs: core.clock.now() + DUE_SOON_MS,
      owns: (id) => core.control.owns(id),
      validation: { minRepeatMs: config.worker.min_repeat_ms, maxTaskBytes: config.worker.max_task_size },
      dependencies: this.sources.dependencies.lookup,
    };
  }
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeLease(doc: TaskDoc): string {
  return isLease(doc.lease) ? `instance ${doc.lease.instance}` : 'no holder';
}

/**
 * What an instance does with a task document it sees — a pure function of (document, instance,
 * database time, the instance's share). Every path that brings a document in (the cold-start
 * query, the `_changes` feed, the window refresh, the lease sweep, a re-read after a 409, a
 * change of the live instances) ends here, so the rules of docs/spec.md §3 live in one place. What is
 * then written is built by `writes.ts`.
 *
 * The share: instances of one worker name split the tasks among the live ones by rendezvous
 * hashing of the task id (docs/spec.md §7 "Instances that split the work"). An instance claims the
 * tasks of its share at their date and holds the others as a backup: it claims one only when
 * it is still unclaimed `graceMs` after its date (its owner is busy, slow or gone). The claim
 * write still decides who runs a task; the share only keeps instances from racing for it.
 *
 * Dependencies (`after`): a `waiting` task that names tasks it waits for is its owner's alone
 * to watch. The owner holds it out of the timer until its dependencies are done (or one failed,
 * see task/dependencies.ts), then writes `scheduled` whatever its date, so that the other
 * instances, which never read the dependencies, see it as any held task from then on.
 */
import type { Lease, TaskDoc } from '../types';
import { dependencyVerdict, type DependencyLookup } from './dependencies';
import { validateTask, type ParsedTask, type ValidateOptions } from './validate';

export interface DecideContext {
  worker: string;
  instance: string;
  /** Database time, epoch ms. */
  nowMs: number;
  /** Tasks due after this are left in the database until a later window. */
  horizonEndMs: number;
  /**
   * Tasks due before this are held without a `scheduled` write and claimed straight to
   * `running` when due: a hold that short is not worth a write.
   */
  dueSoonEndMs: number;
  /** True when task `id` is in this instance's share (rendezvous over the live instances). */
  owns(id: string): boolean;
  /** Checks a document passes besides its fields' own (the shortest repeat). */
  validation?: ValidateOptions;
  /** The tasks named in `after` (and on their chains), as this instance last read them. @default none read */
  dependencies?: DependencyLookup;
}

export type Decision =
  /** Not this instance's business (now): forget it if held. */
  | { kind: 'drop'; why: string }
  /**
   * A task with no `status`, due beyond the horizon: write `waiting` so the date index holds
   * it (Mango indexes skip documents without the field) and a later window finds it.
   */
  | { kind: 'mark-waiting' }
  /** Invalid task of this worker: write `error` naming the field. */
  | { kind: 'invalid'; field: string; message: string }
  /** Write `canceled` (aborting the run if this instance runs it). */
  | { kind: 'cancel' }
  /**
   * Hold in memory without a write, claim to `running` when due. `backup`: another instance's
   * share, claimed only if still unclaimed `graceMs` after its date.
   */
  | { kind: 'hold'; task: ParsedTask; backup: boolean }
  /**
   * Claim the hold: write `scheduled` with this instance's lease, then hold. Own share only. A
   * task whose dependencies are all done is always scheduled (written), however soon it is due.
   */
  | { kind: 'schedule'; task: ParsedTask }
  /**
   * Its dependencies are not all done (`pending`): keep it (no write, no timer), read and follow
   * `watch` (its dependencies and the chains walked for cycles), and decide it again when one of
   * them changes. Own share only.
   */
  | { kind: 'wait-for'; task: ParsedTask; pending: string[]; watch: string[] }
  /** A dependency failed, does not exist, repeats, or waits for this task: write `error` naming it. */
  | { kind: 'dependency-failed'; message: string }
  /** Already scheduled by this instance: keep holding. */
  | { kind: 'keep'; task: ParsedTask }
  /** This instance's own run under a live lease: the runner owns it. */
  | { kind: 'own-run' }
  /**
   * A run whose holder's lease expired: claim and run it again (at least once). `backup`:
   * another instance's share, taken over only if still not taken `graceMs` later.
   */
  | { kind: 'take-over-run'; task: ParsedTask; backup: boolean };

/** A lease is live until its `expires_at`, judged by the database's clock. */
export function leaseIsLive(lease: unknown, nowMs: number): lease is Lease {
  if (!isLease(lease)) return false;
  const expires = Date.parse(lease.expires_at);
  return Number.isFinite(expires) && expires > nowMs;
}

export function isLease(value: unknown): value is Lease {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Lease).instance === 'string' &&
    typeof (value as Lease).expires_at === 'string'
  );
}

/** The document carries a lease of `instance` (live or not). */
export function leasedBy(doc: TaskDoc, instance: string): boolean {
  return isLease(doc.lease) && doc.lease.instance === instance;
}

export function decide(doc: TaskDoc, ctx: DecideContext): Decision {
  if (doc._deleted) return { kind: 'drop', why: 'deleted' };
  if (doc.worker !== ctx.worker) return { kind: 'drop', why: 'belongs to another worker' };

  const status = doc.status ?? 'waiting';
  if (status === 'done' || status === 'error' || status === 'canceled') return { kind: 'drop', why: `status ${String(status)}` };
  // A paused task is kept out of memory; a run of it that is alive here finishes (the runner
  // keeps `paused` in its result).
  if (status === 'paused') return { kind: 'drop', why: 'paused' };

  const mine = leasedBy(doc, ctx.instance);
  const othersLive = !mine && leaseIsLive(doc.lease, ctx.nowMs);

  if (status === 'cancel') {
    // The owner of a live lease aborts its own run or hold; otherwise the task's owner
    // acknowledges (any instance would do; one is enough).
    if (othersLive) return { kind: 'drop', why: 'cancel is for the lease holder' };
    return mine || ctx.owns(doc._id) ? { kind: 'cancel' } : { kind: 'drop', why: "cancel is for the task's owner" };
  }

  const checked = validateTask(doc, ctx.validation);
  if (!checked.ok) {
    if (othersLive) return { kind: 'drop', why: 'held by another instance' };
    return { kind: 'invalid', field: checked.field, message: checked.message };
  }
  const task = checked.task;

  switch (task.status) {
    case 'running':
      // A run alive here keeps its lease fresh (heartbeat every lease/3), so an expired lease
      // of this very instance means no run of it is alive: it is taken over like any other.
      if (mine && leaseIsLive(doc.lease, ctx.nowMs)) return { kind: 'own-run' };
      if (othersLive) return { kind: 'drop', why: 'running on another instance' };
      return { kind: 'take-over-run', task, backup: !mine && !ctx.owns(doc._id) };
    case 'scheduled':
      if (mine) return { kind: 'keep', task };
      if (othersLive) return { kind: 'drop', why: 'scheduled by another instance' };
      return place(task, ctx);
    case 'waiting':
      // Only a user writes `waiting` over a lease: resuming a task paused during its run, or
      // moving a held one. The holder carries on with it; the others keep off until it lets go.
      if (othersLive) return { kind: 'drop', why: 'waiting, still held by another instance' };
      return place(task, ctx);
    case 'reschedule':
      return place(task, ctx);
    default:
      // validateTask only lets the statuses above through to here.
      return { kind: 'drop', why: `status ${task.status}` };
  }
}

/** By when it is due (`dueMs`: a user's `run_now` makes a task due before its `date`). */
function place(task: ParsedTask, ctx: DecideContext): Decision {
  if (task.dueMs > ctx.horizonEndMs) {
    return task.doc.status === undefined ? { kind: 'mark-waiting' } : { kind: 'drop', why: 'beyond the horizon' };
  }
  // A `scheduled` task's dependencies were found done by the instance that scheduled it.
  if (task.after !== undefined && task.status !== 'scheduled') return placeAfterDependencies(task, ctx);
  if (!ctx.owns(task.id)) return { kind: 'hold', task, backup: true };
  if (task.dueMs <= ctx.dueSoonEndMs) return { kind: 'hold', task, backup: false };
  return { kind: 'schedule', task };
}

function placeAfterDependencies(task: ParsedTask, ctx: DecideContext): Decision {
  if (!ctx.owns(task.id)) return { kind: 'drop', why: 'waits for its dependencies (its owner follows them)' };
  const verdict = dependencyVerdict(task, ctx.dependencies ?? (() => undefined));
  switch (verdict.kind) {
    case 'waiting':
      return { kind: 'wait-for', task, pending: verdict.pending, watch: verdict.watched };
    case 'failed':
      return { kind: 'dependency-failed', message: verdict.message };
    case 'satisfied':
      return { kind: 'schedule', task };
  }
}

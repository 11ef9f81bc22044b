/**
 * One task an instance holds in memory, and the only code that changes what the instance knows
 * of it: its newest document, its parsed form, its phase here, the write in flight and the
 * document seen meanwhile, its run.
 *
 *                   ┌───────── wrote ◀── writing ◀── write, schedule ───────────┐ (from an idle phase, or claimed)
 *                   ▼                                                           │
 *   hold, block ─▶ held ─becomeDue─▶ due ─claim─▶ claiming ─claimed─▶ claimed ─start─▶ running ─finish─▶ finishing ─finished─▶ let go
 *                blocked                            │ lost: held         │ release: held        │ abandoned: held
 *
 * | from                        | transition        | to         | write it returns                        |
 * |-----------------------------|-------------------|------------|-----------------------------------------|
 * | idle (held, blocked, due)   | hold              | held       | —                                       |
 * | idle                        | block             | blocked    | —                                       |
 * | held                        | becomeDue         | due        | —                                       |
 * | due                         | claim             | claiming   | claim                                   |
 * | claiming                    | claimed           | claimed, or held when lost or failed   | —        |
 * | claimed                     | release           | held       | — (the run will not start)              |
 * | claimed                     | start             | running    | —                                       |
 * | running                     | renew / renewed   | running    | renew                                   |
 * | running                     | finish            | finishing  | finish (again after finishAgainOn)      |
 * | finishing                   | finished          | let go, or held when lost or failed    | —        |
 * | running, finishing          | abandoned         | held       | — (deleted, taken over, shutdown)       |
 * | idle, claimed               | write / schedule  | writing    | schedule, hand-back, a verdict, request |
 * | writing                     | wrote             | held       | —                                       |
 *
 * Each transition checks the phase it leaves (a wrong one is a bug, and throws) and returns the
 * write to make (built by task/writes.ts); the pipeline makes it and hands the outcome back to
 * the matching method. A task is *busy* while a write of it is in flight or its claimed run
 * waits for its date: a newer document seen then is kept (`takeNewer`) and decided once the
 * task is idle again. Phases and transitions use the words of the glossary (src/types.ts).
 */
import { isLease, leasedBy } from '../task/decide';
import type { ParsedTask } from '../task/validate';
import * as writes from '../task/writes';
import type { Transition, WriteContext } from '../task/writes';
import { revGeneration } from '../revision';
import type { WriteOutcome } from '../store/types';
import type { NextStateOptions, RunRecord } from '../task/next-state';
import type { RunOutcome, TaskDoc } from '../types';

/** Why a run was stopped from outside. */
export type AbortReason = 'cancel' | 'deleted' | 'taken-over' | 'shutdown';

export interface JobRun {
  readonly startedAtMs: number;
  /** Resolves with the job's outcome once it has settled (or been abandoned). */
  readonly outcome: Promise<RunOutcome>;
  readonly abortReason: AbortReason | undefined;
  /** The job has settled: an abort now changes nothing, its outcome is being recorded. */
  readonly ended: boolean;
  abort(reason: AbortReason): void;
}

export type Phase =
  /** In the per-second timer, waiting for its claim time (nothing in flight). */
  | 'held'
  /** Waiting for the tasks it names in `after`, out of the timer. */
  | 'blocked'
  /** Its claim time has come: in the ready queue, waiting for a run slot. */
  | 'due'
  /** The claim write is in flight. */
  | 'claiming'
  /** The claim was won; the run waits for its date, a run slot (claimed ahead), or its limits. */
  | 'claimed'
  /** The job runs. */
  | 'running'
  /** The job ended; the finish write is in flight. */
  | 'finishing'
  /** Another write of it is in flight (a schedule, a verdict, a hand-back, a request). */
  | 'writing';

/** What a document seen now means for the task here. */
export type Seen =
  /** Not newer than what is known: nothing to do. */
  | { kind: 'old' }
  /** The task is busy: kept, and decided once it is idle again. */
  | { kind: 'kept' }
  /** The task is idle: decide the document now. */
  | { kind: 'decide' }
  /** Its run goes on; the lease should be renewed at once (a user resumed it, our lease kept). */
  | { kind: 'renew' }
  /** Its run was aborted (a cancel, a delete, another instance took the run over). */
  | { kind: 'aborted'; reason: AbortReason }
  /** Its run goes on as it is. */
  | { kind: 'running' };

/** What a lost or failed write leaves to do. */
export type Missed =
  /** Someone else wrote first; `fresh` is the task now (null: deleted): decide it. */
  | { kind: 'lost'; fresh: TaskDoc | null; contestedRev?: string }
  /** Refused or unreadable: let it go; the next window query brings it back. */
  | { kind: 'failed'; error: Error };

export class HeldTask {
  readonly id: string;
  private current: TaskDoc;
  private parsed: ParsedTask | undefined;
  private now: Phase = 'held';
  private asBackup = false;
  private seenMeanwhile: TaskDoc | undefined;
  private inFlight: Transition | undefined;
  private jobRun: JobRun | undefined;
  private renewal: Promise<void> | undefined;
  private renewalSettled: (() => void) | undefined;
  /** The run is recorded as canceled (a user's cancel came during it). */
  private canceledRun = false;

  constructor(
    doc: TaskDoc,
    /** This instance's id: a lease naming it is ours. */
    private readonly instance: string,
  ) {
    this.id = doc._id;
    this.current = doc;
  }

  /** The newest document known: as written here, or as seen. */
  get doc(): TaskDoc {
    return this.current;
  }

  get task(): ParsedTask | undefined {
    return this.parsed;
  }

  get phase(): Phase {
    return this.now;
  }

  /** Another instance's share, held to claim only if its owner has not past its grace. */
  get backup(): boolean {
    return this.asBackup;
  }

  get run(): JobRun | undefined {
    return this.jobRun;
  }

  /** The write in flight, if any. */
  get writing(): Transition | undefined {
    return this.inFlight;
  }

  /** A write of it is in flight, or its claimed run waits for its date: documents seen wait. */
  get busy(): boolean {
    return this.now === 'claiming' || this.now === 'claimed' || this.now === 'finishing' || this.now === 'writing';
  }

  /** Nothing of it is in flight and no run of it is alive: it may be decided, moved or let go. */
  get idle(): boolean {
    return this.now === 'held' || this.now === 'blocked' || this.now === 'due';
  }

  /** A renewal of its lease is on its way (a finish waits for it: the two never race on one `_rev`). */
  get renewing(): Promise<void> | undefined {
    return this.renewal;
  }

  // ── What a document seen means ─────────────────────────────────────────────────────────

  /** A document of this task came in (feed, query, read-back). */
  observe(doc: TaskDoc): Seen {
    if (this.jobRun && this.now === 'running') return this.observeDuringRun(doc);
    if (!isNewer(doc, this.current)) return { kind: 'old' };
    if (this.busy) {
      if (!this.seenMeanwhile || isNewer(doc, this.seenMeanwhile)) this.seenMeanwhile = doc;
      return { kind: 'kept' };
    }
    return { kind: 'decide' };
  }

  /** The document seen while busy, when newer than what is known now; taken (seen once). */
  takeNewer(): TaskDoc | undefined {
    const seen = this.seenMeanwhile;
    this.seenMeanwhile = undefined;
    return seen && isNewer(seen, this.current) ? seen : undefined;
  }

  /** A newer document was seen while busy (a cancel, a reschedule): the claimed run must not start. */
  get overtaken(): boolean {
    return this.seenMeanwhile !== undefined && isNewer(this.seenMeanwhile, this.current);
  }

  // ── Held, blocked, due ─────────────────────────────────────────────────────────────────

  /** Held until its claim time: this instance's share, or a backup for another's. */
  hold(doc: TaskDoc, task: ParsedTask, backup: boolean): void {
    this.expectIdle('hold');
    this.current = doc;
    this.parsed = task;
    this.asBackup = backup;
    this.now = 'held';
  }

  /** Out of the timer until the tasks it waits for (`after`) change. */
  block(doc: TaskDoc, task: ParsedTask): void {
    this.expectIdle('block');
    this.current = doc;
    this.parsed = task;
    this.asBackup = false;
    this.now = 'blocked';
  }

  /** Its claim time has come. False when it is not held (it moved on meanwhile). */
  becomeDue(): boolean {
    if (this.now !== 'held' || !this.parsed) return false;
    this.now = 'due';
    return true;
  }

  // ── Claim, run, finish ─────────────────────────────────────────────────────────────────

  /** The claim write: `running` with this instance's lease. */
  claim(ctx: WriteContext): TaskDoc {
    this.expect('due', 'claim');
    this.now = 'claiming';
    this.inFlight = 'claim';
    return writes.claim(this.current, ctx);
  }

  /** The claim's outcome: won (claimed, the run may start at its date), or what to do instead. */
  claimed(outcome: WriteOutcome): Missed | undefined {
    return this.settle(outcome, 'claiming', 'claimed', 'claimed');
  }

  /**
   * The claimed run will not start (a newer document came, a user's request waits, its limit
   * has no room, the instance stops): the task is idle again, its claim still in the database
   * until the caller writes or decides again.
   */
  release(): void {
    this.expect('claimed', 'release');
    this.now = 'held';
  }

  /** The job has been called. */
  start(run: JobRun): void {
    this.expect('claimed', 'start');
    this.jobRun = run;
    this.canceledRun = false;
    this.now = 'running';
  }

  /** A user's pause, carried out for them while the run goes on: the finish keeps the task paused. */
  pauseRun(): void {
    this.expect('running', 'pause');
    this.current = { ...this.current, status: 'paused' };
  }

  /**
   * The finish write for the job's `outcome`, and the outcome it records. A user's cancel seen
   * after the job settled (while a renewal was on its way, say) is a cancel all the same: the
   * run is recorded as canceled, on this try and the next.
   */
  finish(outcome: RunOutcome, run: RunRecord, options: NextStateOptions): { doc: TaskDoc; result: RunOutcome } {
    this.expect(['running', 'finishing'], 'finish');
    this.now = 'finishing';
    this.inFlight = 'finish';
    if (this.current.status === 'cancel') this.canceledRun = true;
    const result: RunOutcome = this.canceledRun ? { kind: 'canceled' } : outcome;
    return { doc: writes.finish(this.current, this.parsed!, result, run, options), result };
  }

  /**
   * The finish write lost: whether the run's outcome may be written again on the document now
   * (the run's own lease kept; a user's cancel, pause or resume meanwhile), and as what. When it
   * may not, the run's result is not recorded.
   */
  finishAgainOn(fresh: TaskDoc | null): 'again' | 'canceled' | 'no' {
    this.expect('finishing', 'finish again');
    if (!fresh) return 'no';
    const mine = leasedBy(fresh, this.instance);
    if (fresh.status === 'running' && mine) return this.adopt(fresh, 'again');
    // A user's cancel during the run: the run is recorded as canceled.
    if (fresh.status === 'cancel' && (mine || fresh.lease === undefined)) {
      this.canceledRun = true;
      return this.adopt(fresh, 'canceled');
    }
    // A user's pause during the run (and their resume, our lease kept): recorded, and the task
    // stays as the user left it.
    if (fresh.status === 'paused' || (fresh.status === 'waiting' && mine)) return this.adopt(fresh, 'again');
    return 'no';
  }

  /** The finish write's outcome: the run is over here; the task is let go. */
  finished(outcome: WriteOutcome): Missed | undefined {
    this.expect('finishing', 'finished');
    this.inFlight = undefined;
    this.jobRun = undefined;
    if (outcome.kind === 'written') {
      this.current = outcome.doc;
      return undefined;
    }
    return this.missed(outcome);
  }

  /** The run is over without a finish write (aborted by a delete, taken over, a shutdown). */
  abandoned(): void {
    this.expect(['running', 'finishing'], 'abandon');
    this.jobRun = undefined;
    this.inFlight = undefined;
    this.now = 'held';
  }

  // ── The lease of a run ─────────────────────────────────────────────────────────────────

  /** The renewal write, unless one is on its way or the run no longer holds the task. */
  renew(ctx: WriteContext): TaskDoc | undefined {
    const status = this.current.status;
    const run = this.jobRun;
    if (this.now !== 'running' || this.renewal || !run || run.abortReason || (status !== 'running' && status !== 'paused' && status !== 'waiting')) return undefined;
    let settle!: () => void;
    this.renewal = new Promise<void>((resolve) => (settle = resolve));
    this.renewalSettled = settle;
    return writes.renew(this.current, ctx);
  }

  /** The renewal's outcome. A lost one means someone wrote the task while it ran. */
  renewed(outcome: WriteOutcome): Seen | { kind: 'failed'; error: Error } {
    this.renewalSettled?.();
    this.renewal = this.renewalSettled = undefined;
    if (outcome.kind === 'written') {
      if (isNewer(outcome.doc, this.current)) this.current = outcome.doc;
      return { kind: 'running' };
    }
    if (outcome.kind === 'failed') return outcome;
    if (!this.jobRun) return { kind: 'old' };
    if (!outcome.fresh) {
      this.jobRun.abort('deleted');
      return { kind: 'aborted', reason: 'deleted' };
    }
    return this.observeDuringRun(outcome.fresh);
  }

  // ── Other writes: schedule, verdicts, hand-back, mark-waiting, requests ────────────────

  /** A write of an idle task (or of a claimed run that will not start): `next`, built for `transition`. */
  write(transition: Transition, next: TaskDoc): TaskDoc {
    this.expect(['held', 'blocked', 'due', 'claimed'], transition);
    this.now = 'writing';
    this.inFlight = transition;
    return next;
  }

  /** The schedule write: `scheduled` with this instance's lease until its date plus the grace. */
  schedule(doc: TaskDoc, task: ParsedTask, ctx: WriteContext): TaskDoc {
    this.expectIdle('schedule');
    this.current = doc;
    this.parsed = task;
    this.asBackup = false;
    return this.write('schedule', writes.schedule(doc, task.dueMs, ctx));
  }

  /** The outcome of `write`: the task is idle again, held (the caller says where next). */
  wrote(outcome: WriteOutcome): Missed | undefined {
    return this.settle(outcome, 'writing', 'held', 'wrote');
  }

  // ── Inside ─────────────────────────────────────────────────────────────────────────────

  /** A newer version of a task this instance is running (the runner's part of `observe`). */
  private observeDuringRun(doc: TaskDoc): Seen {
    const run = this.jobRun!;
    if (doc._deleted) {
      run.abort('deleted');
      return { kind: 'aborted', reason: 'deleted' };
    }
    if (!isNewer(doc, this.current) || isRivalClaimBranch(doc, this.current)) return { kind: 'old' };
    this.current = doc;
    if (doc.status === 'cancel') {
      run.abort('cancel');
      return { kind: 'aborted', reason: 'cancel' };
    }
    // A user's pause lets the run finish; its result keeps the task paused (writes.finish).
    if (doc.status === 'paused') return { kind: 'running' };
    // A user resumed it (`waiting`, our lease kept) before the run ended: the run goes on, and
    // its next renewal or its finish says what the task is.
    if (doc.status === 'waiting' && leasedBy(doc, this.instance)) return { kind: 'renew' };
    if (doc.status !== 'running' || !leasedBy(doc, this.instance)) {
      run.abort('taken-over');
      return { kind: 'aborted', reason: 'taken-over' };
    }
    return { kind: 'running' };
  }

  private adopt<T>(fresh: TaskDoc, answer: T): T {
    this.current = fresh;
    return answer;
  }

  /** The outcome of the write made in phase `from` (the transition `name`): written, the task moves to `to`; else it is held. */
  private settle(outcome: WriteOutcome, from: Phase, to: Phase, name: string): Missed | undefined {
    this.expect(from, name);
    this.inFlight = undefined;
    if (outcome.kind !== 'written') return this.missed(outcome);
    this.current = outcome.doc;
    this.now = to;
    return undefined;
  }

  /** A write that did not land: the task is idle (held) for the caller to let go or decide again. */
  private missed(outcome: Exclude<WriteOutcome, { kind: 'written' }>): Missed {
    this.now = 'held';
    return outcome;
  }

  private expectIdle(transition: string): void {
    if (!this.idle) throw new Error(`task ${this.id}: cannot ${transition} while ${this.now}`);
  }

  private expect(phases: Phase | readonly Phase[], transition: string): void {
    const allowed = typeof phases === 'string' ? [phases] : phases;
    if (!allowed.includes(this.now)) throw new Error(`task ${this.id}: cannot ${transition} while ${this.now}`);
  }
}

/** A later revision than the one known (the same generation counts: a conflict's winner). */
export function isNewer(incoming: TaskDoc, known: TaskDoc): boolean {
  if (incoming._rev === known._rev) return false;
  return revGeneration(incoming._rev) >= revGeneration(known._rev);
}

/**
 * `incoming` is a sibling of `known` — written from the same parent revision by someone else —
 * that holds or claims the task: in a cluster, a rival's claim that reached fewer copies than a
 * quorum while `known` (ours, answered 201) reached one. CouchDB may show it for a while as the
 * winner (same length, higher revision id); it never is the owner, and our next write on our
 * own branch makes ours the longer branch again.
 */
export function isRivalClaimBranch(incoming: TaskDoc, known: TaskDoc): boolean {
  return (
    incoming._rev !== known._rev &&
    revGeneration(incoming._rev) === revGeneration(known._rev) &&
    (incoming.status === 'running' || incoming.status === 'scheduled')
  );
}

/** `instance ...` holding the document's lease, for log lines. */
export function describeLease(doc: TaskDoc): string {
  return isLease(doc.lease) ? `instance ${doc.lease.instance}` : 'no holder';
}

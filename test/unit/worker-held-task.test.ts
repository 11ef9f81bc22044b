/**
 * HeldTask (src/worker/held-task.ts): one test per arrow of its state diagram, what each
 * transition writes, and what a document seen in each phase means.
 */
import { expect } from 'chai';
import { HeldTask, type JobRun } from '../../src/worker/held-task';
import { validateTask, type ParsedTask } from '../../src/task/validate';
import type { WriteContext } from '../../src/task/writes';
import type { RunOutcome, TaskDoc } from '../../src/types';

const ME = 'host:1:me';
const NOW = Date.UTC(2026, 0, 5, 9, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();
const ctx: WriteContext = { instance: ME, nowMs: NOW, leaseMs: 30_000, graceMs: 2_000 };
const record = { startedAtMs: NOW, finishedAtMs: NOW + 5, worker: 'nightly', instance: ME };

function doc(rev: string, fields: Partial<TaskDoc> = {}): TaskDoc {
  return { _id: 't1', _rev: rev, worker: 'nightly', status: 'waiting', date: iso(NOW), job: { name: 'succeeds' }, ...fields };
}

function parsed(d: TaskDoc): ParsedTask {
  const checked = validateTask(d);
  if (!checked.ok) throw new Error(checked.message);
  return checked.task;
}

/** A run that the test ends and aborts by hand. */
function fakeRun(): JobRun & { aborted: string[] } {
  const aborted: string[] = [];
  let ended = false;
  return {
    startedAtMs: NOW,
    outcome: new Promise<RunOutcome>(() => undefined),
    get abortReason() {
      return aborted[0] as JobRun['abortReason'];
    },
    get ended() {
      return ended;
    },
    abort(reason) {
      aborted.push(reason);
      ended = true;
    },
    aborted,
  };
}

function held(d = doc('1-a')): HeldTask {
  const task = new HeldTask(d, ME);
  task.hold(d, parsed(d), false);
  return task;
}

/** A task claimed and running here (the claim written as revision 2). */
function running(): { task: HeldTask; run: ReturnType<typeof fakeRun> } {
  const task = held();
  task.becomeDue();
  const claim = task.claim(ctx);
  task.claimed({ kind: 'written', doc: { ...claim, _rev: '2-c' } });
  const run = fakeRun();
  task.start(run);
  return { task, run };
}

describe('HeldTask: one arrow at a time', () => {
  it('hold: held, with its document and parsed form, own share or backup', () => {
    const d = doc('1-a');
    const task = new HeldTask(d, ME);
    task.hold(d, parsed(d), true);
    expect(task.phase).to.equal('held');
    expect(task.backup).to.equal(true);
    expect(task.doc).to.equal(d);
    expect(task.idle).to.equal(true);
  });

  it('block: out of the timer, waiting for its dependencies, never a backup', () => {
    const d = doc('1-a', { after: ['other'] });
    const task = new HeldTask(d, ME);
    task.block(d, parsed(d));
    expect(task.phase).to.equal('blocked');
    expect(task.backup).to.equal(false);
    expect(task.becomeDue(), 'a blocked task is never due by its timer').to.equal(false);
  });

  it('becomeDue: held → due; anything else stays', () => {
    const task = held();
    expect(task.becomeDue()).to.equal(true);
    expect(task.phase).to.equal('due');
    expect(task.becomeDue()).to.equal(false);
  });

  it('claim: due → claiming, and the write is running with our lease', () => {
    const task = held();
    task.becomeDue();
    const write = task.claim(ctx);
    expect(task.phase).to.equal('claiming');
    expect(task.writing).to.equal('claim');
    expect(write).to.deep.include({ _rev: '1-a', status: 'running', lease: { instance: ME, expires_at: iso(NOW + 30_000) } });
    expect(task.busy).to.equal(true);
  });

  it('claimed, won: claimed, holding the document as written', () => {
    const task = held();
    task.becomeDue();
    const written = { ...task.claim(ctx), _rev: '2-c' };
    expect(task.claimed({ kind: 'written', doc: written })).to.equal(undefined);
    expect(task.phase).to.equal('claimed');
    expect(task.doc).to.equal(written);
    expect(task.writing).to.equal(undefined);
  });

  it('claimed, lost: held again (idle), with the task as it is now to decide', () => {
    const task = held();
    task.becomeDue();
    task.claim(ctx);
    const fresh = doc('2-user', { status: 'cancel' });
    expect(task.claimed({ kind: 'lost', fresh })).to.deep.equal({ kind: 'lost', fresh });
    expect(task.phase).to.equal('held');
    expect(task.idle).to.equal(true);
  });

  it('claimed, failed: held again, with the error', () => {
    const task = held();
    task.becomeDue();
    task.claim(ctx);
    const error = new Error('forbidden');
    expect(task.claimed({ kind: 'failed', error })).to.deep.equal({ kind: 'failed', error });
    expect(task.phase).to.equal('held');
  });

  it('release: claimed → held, the run will not start', () => {
    const task = held();
    task.becomeDue();
    task.claimed({ kind: 'written', doc: { ...task.claim(ctx), _rev: '2-c' } });
    task.release();
    expect(task.phase).to.equal('held');
  });

  it('start: claimed → running, with its run', () => {
    const { task, run } = running();
    expect(task.phase).to.equal('running');
    expect(task.run).to.equal(run);
    expect(task.busy).to.equal(false);
    expect(task.idle).to.equal(false);
  });

  it('renew: the same document with the lease moved on, one at a time; renewed takes the written revision', () => {
    const { task } = running();
    const later = { ...ctx, nowMs: NOW + 10_000 };
    const write = task.renew(later)!;
    expect(write).to.deep.include({ _rev: '2-c', status: 'running', lease: { instance: ME, expires_at: iso(NOW + 40_000) } });
    expect(task.renew(later), 'one renewal on its way at a time').to.equal(undefined);
    expect(task.renewed({ kind: 'written', doc: { ...write, _rev: '3-r' } })).to.deep.equal({ kind: 'running' });
    expect(task.doc._rev).to.equal('3-r');
    expect(task.renew(later), 'the next one may go').to.not.equal(undefined);
  });

  it('renewed, lost to a cancel: the run is aborted', () => {
    const { task, run } = running();
    task.renew(ctx);
    const seen = task.renewed({ kind: 'lost', fresh: doc('3-u', { status: 'cancel', lease: { instance: ME, expires_at: iso(NOW + 30_000) } }) });
    expect(seen).to.deep.equal({ kind: 'aborted', reason: 'cancel' });
    expect(run.aborted).to.deep.equal(['cancel']);
  });

  it('finish: running → finishing, the outcome written by next-state', () => {
    const { task } = running();
    const { doc: write, result } = task.finish({ kind: 'success', result: { ok: 1 } }, record, { historyLimit: 5 });
    expect(task.phase).to.equal('finishing');
    expect(result.kind).to.equal('success');
    expect(write).to.deep.include({ _rev: '2-c', status: 'done', result: { ok: 1 }, executions: 1 });
    expect(write).not.to.have.property('lease');
  });

  it('finish after a cancel seen during the run: recorded as canceled', () => {
    const { task } = running();
    task.observe(doc('3-u', { status: 'cancel', lease: { instance: ME, expires_at: iso(NOW + 30_000) } }));
    const { doc: write, result } = task.finish({ kind: 'success', result: null }, record, { historyLimit: 5 });
    expect(result.kind).to.equal('canceled');
    expect(write.status).to.equal('canceled');
  });

  it('finishAgainOn: again on our own lease, canceled on a user\'s cancel, no on a takeover', () => {
    const ours = { instance: ME, expires_at: iso(NOW + 30_000) };
    const cases: Array<[string, TaskDoc | null, string]> = [
      ['our run, written on meanwhile', doc('3-x', { status: 'running', lease: ours }), 'again'],
      ["a user's cancel", doc('3-x', { status: 'cancel', lease: ours }), 'canceled'],
      ["a user's pause", doc('3-x', { status: 'paused', lease: ours }), 'again'],
      ['another instance took it over', doc('3-x', { status: 'running', lease: { instance: 'other', expires_at: iso(NOW) } }), 'no'],
      ['deleted', null, 'no'],
    ];
    for (const [what, fresh, answer] of cases) {
      const { task } = running();
      task.finish({ kind: 'success', result: null }, record, { historyLimit: 5 });
      expect(task.finishAgainOn(fresh), what).to.equal(answer);
    }
  });

  it('finished: written, the run is over; lost, held again', () => {
    const { task } = running();
    const { doc: write } = task.finish({ kind: 'success', result: null }, record, { historyLimit: 5 });
    expect(task.finished({ kind: 'written', doc: { ...write, _rev: '3-f' } })).to.equal(undefined);
    expect(task.run).to.equal(undefined);
    expect(task.doc.status).to.equal('done');

    const other = running().task;
    other.finish({ kind: 'success', result: null }, record, { historyLimit: 5 });
    expect(other.finished({ kind: 'lost', fresh: null })).to.deep.equal({ kind: 'lost', fresh: null });
    expect(other.phase).to.equal('held');
  });

  it('abandoned: running → held, no run any more', () => {
    const { task } = running();
    task.abandoned();
    expect(task.phase).to.equal('held');
    expect(task.run).to.equal(undefined);
  });

  it('schedule: idle → writing, the write is scheduled with our lease until the date plus the grace', () => {
    const later = doc('1-a', { date: iso(NOW + 60_000) });
    const task = new HeldTask(later, ME);
    const write = task.schedule(later, parsed(later), ctx);
    expect(task.phase).to.equal('writing');
    expect(task.writing).to.equal('schedule');
    expect(write).to.deep.include({ status: 'scheduled', lease: { instance: ME, expires_at: iso(NOW + 62_000) } });
  });

  it('write, then wrote: held again with the document written; a claimed run may be handed back', () => {
    const task = held();
    const next = { ...task.doc, status: 'error' };
    expect(task.write('invalid', next)).to.equal(next);
    expect(task.phase).to.equal('writing');
    expect(task.wrote({ kind: 'written', doc: { ...next, _rev: '2-e' } })).to.equal(undefined);
    expect(task.phase).to.equal('held');
    expect(task.doc._rev).to.equal('2-e');

    const claimed = held();
    claimed.becomeDue();
    claimed.claimed({ kind: 'written', doc: { ...claimed.claim(ctx), _rev: '2-c' } });
    claimed.write('hand-back', claimed.doc);
    expect(claimed.phase).to.equal('writing');
  });

  it('a transition from the wrong phase is a bug: it throws, naming the task and the phase', () => {
    const task = held();
    expect(() => task.claim(ctx)).to.throw(/t1.*cannot claim while held/);
    const { task: busy } = running();
    expect(() => busy.hold(busy.doc, busy.task!, false)).to.throw(/cannot hold while running/);
    expect(() => busy.write('hand-back', busy.doc)).to.throw(/cannot hand-back while running/);
  });
});

describe('HeldTask: what a document seen means', () => {
  it('not newer than what is known: old, whatever the phase', () => {
    const task = held(doc('2-b'));
    expect(task.observe(doc('2-b'))).to.deep.equal({ kind: 'old' });
    expect(task.observe(doc('1-a'))).to.deep.equal({ kind: 'old' });
  });

  it('idle: decide it now', () => {
    expect(held().observe(doc('2-b'))).to.deep.equal({ kind: 'decide' });
  });

  it('busy: kept, the newest one, and taken once the task is idle again', () => {
    const task = held();
    task.becomeDue();
    task.claim(ctx);
    expect(task.observe(doc('3-c'))).to.deep.equal({ kind: 'kept' });
    expect(task.observe(doc('2-b'))).to.deep.equal({ kind: 'kept' });
    expect(task.overtaken).to.equal(true);
    task.claimed({ kind: 'written', doc: { ...doc('2-mine'), status: 'running' } });
    expect(task.takeNewer()?._rev).to.equal('3-c');
    expect(task.takeNewer(), 'taken once').to.equal(undefined);
  });

  it('during a run: a delete or a cancel aborts it, a pause keeps it, a resume renews, a takeover aborts', () => {
    const ours = { instance: ME, expires_at: iso(NOW + 30_000) };
    const cases: Array<[string, TaskDoc, string, string | undefined]> = [
      ['deleted', { _id: 't1', _rev: '3-d', _deleted: true }, 'aborted', 'deleted'],
      ['canceled by a user', doc('3-u', { status: 'cancel', lease: ours }), 'aborted', 'cancel'],
      ['paused by a user', doc('3-u', { status: 'paused', lease: ours }), 'running', undefined],
      ['resumed by a user, our lease kept', doc('3-u', { status: 'waiting', lease: ours }), 'renew', undefined],
      ['taken over by another instance', doc('3-o', { status: 'running', lease: { instance: 'other', expires_at: iso(NOW) } }), 'aborted', 'taken-over'],
      ['our own claim written on', doc('3-u', { status: 'running', lease: ours }), 'running', undefined],
    ];
    for (const [what, seen, kind, reason] of cases) {
      const { task, run } = running();
      expect(task.observe(seen).kind, what).to.equal(kind);
      expect(run.aborted[0], what).to.equal(reason);
    }
  });

  it("a rival's claim branch of the same generation in a cluster is not news during our run", () => {
    const { task, run } = running();
    expect(task.observe(doc('2-zzz', { status: 'running', lease: { instance: 'other', expires_at: iso(NOW) } }))).to.deep.equal({ kind: 'old' });
    expect(run.aborted).to.deep.equal([]);
  });
});

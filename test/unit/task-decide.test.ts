import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { decide, leaseIsLive, type DecideContext } from '../../src/task/decide';
import { isOwnWrite } from '../../src/store/for-workers/write-outcomes';
import type { DependencyView } from '../../src/task/dependencies';
import { describeLateness } from '../../src/worker/events';

const now = Date.UTC(2026, 10, 23, 12, 0, 0);
const ctx: DecideContext = {
  worker: 'nightly',
  instance: 'me',
  nowMs: now,
  horizonEndMs: now + 120_000,
  dueSoonEndMs: now + 1_000,
  owns: () => true,
};
/** The same instance, for tasks of another live instance's share. */
const backupCtx: DecideContext = { ...ctx, owns: () => false };
/** The tasks `import` (done), `fx` (running), `bad` (error), `gone` (missing) as read; `unread` not read yet. */
const views: Record<string, DependencyView | null> = {
  import: { status: 'done', repeats: false, after: [] },
  fx: { status: 'running', repeats: false, after: [] },
  bad: { status: 'error', repeats: false, after: [] },
  gone: null,
};
const depsCtx: DecideContext = { ...ctx, dependencies: (id) => views[id] };
const iso = (ms: number): string => new Date(ms).toISOString();
const base = (fields: Record<string, unknown>): TaskDoc => ({
  _id: 't1',
  _rev: '1-a',
  worker: 'nightly',
  date: iso(now - 1000),
  job: { name: 'succeeds', arguments: [] },
  status: 'waiting',
  ...fields,
});
/** `{a: {a: ... 1}}`, `depth` objects deep. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}
const liveLease = (instance: string) => ({ instance, expires_at: iso(now + 10_000) });
const deadLease = (instance: string) => ({ instance, expires_at: iso(now - 1) });

const cases: Array<{ name: string; doc: TaskDoc; kind: string; backup?: boolean; context?: DecideContext }> = [
  { name: 'overdue waiting task: hold, claim straight to running', doc: base({}), kind: 'hold' },
  { name: 'waiting task due within a second: hold without a write', doc: base({ date: iso(now + 500) }), kind: 'hold' },
  { name: 'waiting task due in a minute: schedule (claim the hold)', doc: base({ date: iso(now + 60_000) }), kind: 'schedule' },
  { name: 'waiting task beyond the horizon: left in the database', doc: base({ date: iso(now + 3_600_000) }), kind: 'drop' },
  { name: 'a task with no status beyond the horizon: mark it waiting so the date index holds it', doc: base({ status: undefined, date: iso(now + 3_600_000) }), kind: 'mark-waiting' },
  { name: 'reschedule is placed like waiting', doc: base({ status: 'reschedule', date: iso(now + 60_000) }), kind: 'schedule' },
  { name: 'no status means waiting', doc: base({ status: undefined }), kind: 'hold' },
  { name: 'deleted document', doc: { _id: 't1', _rev: '2-b', _deleted: true }, kind: 'drop' },
  { name: 'another worker\'s task', doc: base({ worker: 'daily' }), kind: 'drop' },
  { name: 'done task', doc: base({ status: 'done' }), kind: 'drop' },
  { name: 'error task', doc: base({ status: 'error' }), kind: 'drop' },
  { name: 'canceled task', doc: base({ status: 'canceled' }), kind: 'drop' },
  { name: 'cancel of an unheld task', doc: base({ status: 'cancel' }), kind: 'cancel' },
  { name: 'cancel of a task I hold', doc: base({ status: 'cancel', lease: liveLease('me') }), kind: 'cancel' },
  { name: 'cancel of a task another live instance holds: its owner answers', doc: base({ status: 'cancel', lease: liveLease('other') }), kind: 'drop' },
  { name: 'cancel of a task whose holder died', doc: base({ status: 'cancel', lease: deadLease('other') }), kind: 'cancel' },
  { name: 'cancel of an invalid task still cancels', doc: base({ status: 'cancel', date: 'never' }), kind: 'cancel' },
  { name: 'scheduled by me: keep holding', doc: base({ status: 'scheduled', date: iso(now + 60_000), lease: liveLease('me') }), kind: 'keep' },
  { name: 'scheduled by a live instance', doc: base({ status: 'scheduled', lease: liveLease('other') }), kind: 'drop' },
  { name: 'scheduled by a dead instance: take the hold over', doc: base({ status: 'scheduled', date: iso(now + 60_000), lease: deadLease('other') }), kind: 'schedule' },
  { name: 'scheduled with no holder (written by hand)', doc: base({ status: 'scheduled' }), kind: 'hold' },
  { name: 'my own run', doc: base({ status: 'running', lease: liveLease('me') }), kind: 'own-run' },
  { name: 'my own run whose lease expired: no run of it is alive here (the heartbeat would keep it), run it again', doc: base({ status: 'running', lease: deadLease('me') }), kind: 'take-over-run' },
  { name: 'running on an instance whose lease expires this very millisecond: expired', doc: base({ status: 'running', lease: { instance: 'other', expires_at: iso(now) } }), kind: 'take-over-run' },
  { name: 'running with an unreadable lease date: no live holder', doc: base({ status: 'running', lease: { instance: 'other', expires_at: 'soon' } }), kind: 'take-over-run' },
  { name: 'scheduled by me with an expired lease (a slow ready queue): keep holding', doc: base({ status: 'scheduled', lease: deadLease('me') }), kind: 'keep' },
  { name: 'reschedule of a task another live instance holds: placed afresh (the new date is the user\'s)', doc: base({ status: 'reschedule', date: iso(now + 60_000), lease: liveLease('other') }), kind: 'schedule' },
  { name: 'running on a live instance', doc: base({ status: 'running', lease: liveLease('other') }), kind: 'drop' },
  { name: 'running on a dead instance: run it again', doc: base({ status: 'running', lease: deadLease('other') }), kind: 'take-over-run' },
  { name: 'running with no lease at all', doc: base({ status: 'running' }), kind: 'take-over-run' },
  { name: 'unknown status', doc: base({ status: 'sleeping' }), kind: 'invalid' },
  { name: 'a paused task is kept out of memory', doc: base({ status: 'paused' }), kind: 'drop' },
  { name: 'a paused task that was running here: the runner finishes it', doc: base({ status: 'paused', lease: liveLease('me') }), kind: 'drop' },
  { name: 'a repeat shorter than the minimum', doc: base({ repeat: { ms: 1 } }), kind: 'invalid' },
  { name: 'a repeat of exactly the minimum', doc: base({ repeat: { s: 1 } }), kind: 'hold' },
  { name: 'a cron repeat every second is the minimum', doc: base({ repeat: { cron: '* * * * * *' } }), kind: 'hold' },
  { name: 'a document nested too deep to be written back', doc: base({ data: nested(100_000) }), kind: 'invalid' },
  { name: 'a payload nested 3,000 levels (never walked: serialised natively)', doc: base({ data: nested(3000) }), kind: 'hold' },
  { name: 'a document over worker.max_task_size', doc: base({ data: 'x'.repeat(1_000_001) }), kind: 'invalid' },
  { name: 'a document just under it', doc: base({ data: 'x'.repeat(999_000) }), kind: 'hold' },
  { name: 'another instance\'s share, overdue: held as a backup', doc: base({}), kind: 'hold', backup: true, context: backupCtx },
  { name: 'another instance\'s share due in a minute: held as a backup, never scheduled', doc: base({ date: iso(now + 60_000) }), kind: 'hold', backup: true, context: backupCtx },
  { name: 'another instance\'s share beyond the horizon: left in the database', doc: base({ date: iso(now + 3_600_000) }), kind: 'drop', context: backupCtx },
  { name: 'another instance\'s hold whose lease expired: a backup', doc: base({ status: 'scheduled', lease: deadLease('other') }), kind: 'hold', backup: true, context: backupCtx },
  { name: 'my own hold, though now another\'s share: kept', doc: base({ status: 'scheduled', date: iso(now + 60_000), lease: liveLease('me') }), kind: 'keep', context: backupCtx },
  { name: 'a dead run of another\'s share: taken over as a backup', doc: base({ status: 'running', lease: deadLease('other') }), kind: 'take-over-run', backup: true, context: backupCtx },
  { name: 'my own dead run, another\'s share now: mine to take over', doc: base({ status: 'running', lease: deadLease('me') }), kind: 'take-over-run', backup: false, context: backupCtx },
  { name: 'a cancel of another\'s share with no holder: its owner answers', doc: base({ status: 'cancel' }), kind: 'drop', context: backupCtx },
  { name: 'a cancel of my hold, though another\'s share: mine to answer', doc: base({ status: 'cancel', lease: liveLease('me') }), kind: 'cancel', context: backupCtx },
  { name: 'bad date', doc: base({ date: '2013-13-45' }), kind: 'invalid' },
  { name: 'no job', doc: base({ job: undefined }), kind: 'invalid' },
  { name: 'invalid task held by a live instance is its business', doc: base({ status: 'scheduled', date: 42, lease: liveLease('other') }), kind: 'drop' },
  { name: 'run now of a task dated next year: due now, held', doc: base({ date: iso(now + 365 * 86_400_000), run_now: iso(now) }), kind: 'hold' },
  { name: 'run now asked for in a minute, date next year: scheduled for then', doc: base({ date: iso(now + 365 * 86_400_000), run_now: iso(now + 60_000) }), kind: 'schedule' },
  { name: 'run now of another\'s share: held as a backup', doc: base({ date: iso(now + 365 * 86_400_000), run_now: iso(now) }), kind: 'hold', backup: true, context: backupCtx },
  { name: 'run now of a task I hold (scheduled): keep holding, now due earlier', doc: base({ status: 'scheduled', date: iso(now + 60_000), run_now: iso(now), lease: liveLease('me') }), kind: 'keep' },
  { name: 'run now of a task another live instance holds: its holder runs it', doc: base({ status: 'scheduled', date: iso(now + 60_000), run_now: iso(now), lease: liveLease('other') }), kind: 'drop' },
  { name: 'run_now that is no date: error naming run_now', doc: base({ run_now: 'asap' }), kind: 'invalid' },
  { name: 'waiting with another live instance\'s lease (resumed while that run goes on): the holder decides', doc: base({ lease: liveLease('other') }), kind: 'drop' },
  { name: 'waiting with another instance\'s expired lease: placed as any waiting task', doc: base({ lease: deadLease('other') }), kind: 'hold' },
  { name: 'waiting with my own lease: placed', doc: base({ lease: liveLease('me') }), kind: 'hold' },
  { name: 'a task whose dependencies are done: scheduled (written, so others see them done) though overdue', doc: base({ after: ['import'] }), kind: 'schedule', context: depsCtx },
  { name: 'a task with a dependency still running: waits, whatever its date', doc: base({ after: ['import', 'fx'] }), kind: 'wait-for', context: depsCtx },
  { name: 'a task with a dependency not read yet: waits (for the read)', doc: base({ after: ['unread'] }), kind: 'wait-for', context: depsCtx },
  { name: 'a task whose dependency failed: error', doc: base({ after: ['import', 'bad'] }), kind: 'dependency-failed', context: depsCtx },
  { name: 'a task whose dependency failed, after_failure run: scheduled', doc: base({ after: ['bad'], after_failure: 'run' }), kind: 'schedule', context: depsCtx },
  { name: 'a task whose dependency does not exist: error', doc: base({ after: ['gone'] }), kind: 'dependency-failed', context: depsCtx },
  { name: "a task waiting for dependencies, another instance's share: its owner follows them", doc: base({ after: ['fx'] }), kind: 'drop', context: { ...depsCtx, owns: () => false } },
  { name: 'a task scheduled after its dependencies were found done: kept, not checked again', doc: base({ after: ['fx'], status: 'scheduled', date: iso(now + 60_000), lease: liveLease('me') }), kind: 'keep', context: depsCtx },
  { name: "another instance's hold of a task with dependencies, its lease expired: a backup like any", doc: base({ after: ['fx'], status: 'scheduled', lease: deadLease('other') }), kind: 'hold', backup: true, context: { ...depsCtx, owns: () => false } },
  { name: 'a task with dependencies beyond the horizon: left in the database', doc: base({ after: ['fx'], date: iso(now + 3_600_000) }), kind: 'drop', context: depsCtx },
  { name: 'a cancel of a task waiting for dependencies', doc: base({ after: ['fx'], status: 'cancel' }), kind: 'cancel', context: depsCtx },
  { name: 'a task naming itself in after: invalid', doc: base({ after: ['t1'] }), kind: 'invalid', context: depsCtx },
];

describe('decide: what an instance does with a task it sees', () => {
  for (const c of cases) {
    it(c.name, () => {
      const decision = decide(c.doc, c.context ?? ctx);
      expect(decision.kind).to.equal(c.kind);
      if (c.backup !== undefined) expect(decision).to.include({ backup: c.backup });
    });
  }

  it('applies the configured shortest repeat', () => {
    const every20ms = base({ repeat: { ms: 20 } });
    expect(decide(every20ms, ctx)).to.include({ kind: 'invalid', field: 'repeat' });
    expect(decide(every20ms, { ...ctx, validation: { minRepeatMs: 20 } }).kind).to.equal('hold');
  });

  it('names the field of an invalid task', () => {
    const decision = decide(base({ date: '2013-13-45' }), ctx);
    expect(decision).to.include({ kind: 'invalid', field: 'date' });
    expect(decide(base({ run_now: 'asap' }), ctx)).to.include({ kind: 'invalid', field: 'run_now' });
  });

  it('a run now makes the task due at the earlier of run_now and date', () => {
    const later = iso(now + 365 * 86_400_000);
    const decision = decide(base({ date: later, run_now: iso(now - 5) }), ctx);
    expect(decision).to.deep.include({ kind: 'hold' });
    const task = (decision as { task: { dueMs: number; dateMs: number } }).task;
    expect([task.dueMs, task.dateMs]).to.deep.equal([now - 5, Date.parse(later)]);
    const dueAnyway = decide(base({ date: iso(now - 1000), run_now: iso(now) }), ctx) as { task: { dueMs: number } };
    expect(dueAnyway.task.dueMs).to.equal(now - 1000);
  });

  it('a lease is live until expires_at, by the database clock given', () => {
    expect(leaseIsLive({ instance: 'a', expires_at: iso(now + 1) }, now)).to.equal(true);
    expect(leaseIsLive({ instance: 'a', expires_at: iso(now) }, now)).to.equal(false);
    expect(leaseIsLive({ instance: 'a' }, now)).to.equal(false);
    expect(leaseIsLive(undefined, now)).to.equal(false);
  });
});

describe('isOwnWrite: a conflict on a write whose first try landed', () => {
  const sent: TaskDoc = { ...base({ status: 'running', lease: liveLease('me') }), _rev: '3-x' };
  const cases: Array<{ name: string; found: TaskDoc; own: boolean }> = [
    { name: 'the document as sent, one revision on', found: { ...sent, _rev: '4-y' }, own: true },
    { name: 'the same fields in another order', found: Object.fromEntries(Object.entries({ ...sent, _rev: '4-y' }).reverse()) as TaskDoc, own: true },
    { name: 'another instance\'s claim from the same revision', found: { ...sent, _rev: '4-z', lease: liveLease('other') }, own: false },
    { name: 'a user\'s cancel from the same revision', found: { ...sent, _rev: '4-z', status: 'cancel' }, own: false },
    { name: 'our content but two revisions on (written again since)', found: { ...sent, _rev: '5-y' }, own: false },
    { name: 'the revision we wrote on (the write never landed)', found: { ...sent }, own: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(isOwnWrite(c.found, sent)).to.equal(c.own);
    });
  }
});

describe('lateness in the log', () => {
  const cases: Array<[number, string]> = [
    [0, '0 ms after its date'],
    [59_999, '59999 ms after its date'],
    [61_000, 'overdue by 1m 1s'],
    [3 * 86_400_000 + 4 * 3_600_000 + 5_000, 'overdue by 3d 4h'],
    [2 * 3_600_000 + 30_000, 'overdue by 2h'],
  ];
  for (const [ms, text] of cases) it(`${ms} ms → ${text}`, () => expect(describeLateness(ms)).to.equal(text));
});

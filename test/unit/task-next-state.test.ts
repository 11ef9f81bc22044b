import { expect } from 'chai';
import { canceledState, invalidState, nextState, RunRecord } from '../../src/task/next-state';
import { ParsedTask, validateTask } from '../../src/task/validate';
import type { HistoryEntry, RunAgain, RunOutcome, TaskDoc } from '../../src/types';

const DATE = '2013-01-12T10:00:00Z';
const STARTED = Date.parse('2013-01-12T10:00:00.250Z');
const FINISHED = Date.parse('2013-01-12T10:00:02.000Z');
const run: RunRecord = { startedAtMs: STARTED, finishedAtMs: FINISHED, worker: 'nightly', instance: 'host-1:42' };
const lease = { instance: 'host-1:42', expires_at: '2013-01-12T10:00:30.000Z' };

function task(fields: Record<string, unknown> = {}, minRepeatMs?: number): { doc: TaskDoc; parsed: ParsedTask } {
  const doc: TaskDoc = {
    _id: 'task-1',
    _rev: '3-abc',
    worker: 'nightly',
    date: DATE,
    job: 'succeeds',
    status: 'running',
    lease,
    note: { kept: true },
    ...fields,
  };
  const validated = validateTask(doc, minRepeatMs === undefined ? {} : { minRepeatMs });
  if (!validated.ok) throw new Error(`fixture is invalid: ${validated.message}`);
  return { doc, parsed: validated.task };
}

const success = (result: unknown): RunOutcome => ({ kind: 'success', result });
const failure: RunOutcome = { kind: 'failure', error: { message: 'boom', code: 'E_BOOM' } };

function after(fields: Record<string, unknown>, outcome: RunOutcome, historyLimit = 10, record = run, minRepeatMs?: number): TaskDoc {
  const { doc, parsed } = task(fields, minRepeatMs);
  const frozen = JSON.stringify(doc);
  const next = nextState(doc, parsed, outcome, record, { historyLimit });
  expect(JSON.stringify(doc)).to.equal(frozen, 'nextState mutated its input');
  return next;
}

describe('nextState', () => {
  describe('every finished run', () => {
    const outcomes: { name: string; outcome: RunOutcome; status: string }[] = [
      { name: 'success', outcome: success({ invoices: 3 }), status: 'done' },
      { name: 'failure', outcome: failure, status: 'error' },
    ];
    for (const c of outcomes) {
      it(`${c.name}: counts the execution, records last_run, drops the lease, keeps user fields`, () => {
        const next = after({ executions: 4 }, c.outcome);
        expect(next.status).to.equal(c.status);
        expect(next.executions).to.equal(5);
        expect(next.last_run).to.deep.equal({
          started_at: '2013-01-12T10:00:00.250Z',
          finished_at: '2013-01-12T10:00:02.000Z',
          duration_ms: 1750,
          worker: 'nightly',
          instance: 'host-1:42',
        });
        expect(next).to.not.have.property('lease');
        expect(next._id).to.equal('task-1');
        expect(next._rev).to.equal('3-abc');
        expect(next.note).to.deep.equal({ kept: true });
        expect(next.history?.[0]?.status).to.equal(c.status);
      });
    }
  });

  describe('success', () => {
    it('stores the result, clears the error and retries', () => {
      const next = after({ error: { message: 'old' }, retries: 2 }, success({ invoices: 3 }));
      expect(next).to.deep.include({ status: 'done', result: { invoices: 3 }, retries: 0 });
      expect(next).to.not.have.property('error');
    });

    it('removes the result field when the job returned nothing', () => {
      const next = after({ result: 'previous' }, success(undefined));
      expect(next).to.not.have.property('result');
    });

    it('a repeating task waits for its next date and remembers its anchor', () => {
      const next = after({ repeat: { hours: 1 } }, success(null));
      expect(next).to.deep.include({ status: 'waiting', date: '2013-01-12T11:00:00.000Z', repetitions: 1, anchor_date: DATE });
    });

    it('a repeat counts from anchor_date, not from the current date', () => {
      const next = after(
        { repeat: { months: 1 }, anchor_date: '2013-01-31T10:00:00Z', date: '2013-02-28T10:00:00Z', repetitions: 1 },
        success(null),
        10,
        { ...run, startedAtMs: Date.parse('2013-02-28T10:00:00Z'), finishedAtMs: Date.parse('2013-02-28T10:00:01Z') },
      );
      expect(next).to.deep.include({ status: 'waiting', date: '2013-03-31T10:00:00.000Z', repetitions: 2, anchor_date: '2013-01-31T10:00:00Z' });
    });

    it('a repeat that reached its limit is done, its repetitions counted', () => {
      const next = after({ repeat: { hours: 1, limit: 3 }, repetitions: 2 }, success(null));
      expect(next).to.deep.include({ status: 'done', repetitions: 3 });
      expect(next.date).to.equal(DATE);
    });

    it('a repeat past until is done', () => {
      const next = after({ repeat: { hours: 1, until: '2013-01-12T10:30:00Z' } }, success(null));
      expect(next).to.deep.include({ status: 'done', repetitions: 1 });
    });

    it('a repeat whose run outlasted several dates runs once at once (run_once)', () => {
      const next = after({ repeat: { minutes: 1 } }, success(null), 10, { ...run, finishedAtMs: Date.parse('2013-01-12T10:05:30Z') });
      expect(next).to.deep.include({ status: 'waiting', date: '2013-01-12T10:05:00.000Z' });
    });
  });

  describe('failure', () => {
    it('with no retry: error, with the job error stored', () => {
      const next = after({}, failure);
      expect(next).to.deep.include({ status: 'error', error: { message: 'boom', code: 'E_BOOM' } });
      expect(next.history?.[0]).to.deep.include({ status: 'error', error: { message: 'boom', code: 'E_BOOM' } });
    });

    it('with a retry left: waits delay × backoff^n from the finish', () => {
      const next = after({ retry: { limit: 3, delay: 'PT10S', backoff: 2 }, retries: 2 }, failure);
      expect(next).to.deep.include({ status: 'waiting', retries: 3, date: '2013-01-12T10:00:42.000Z' });
      expect(next.error).to.deep.equal({ message: 'boom', code: 'E_BOOM' });
    });

    it('the first retry waits the plain delay', () => {
      const next = after({ retry: { limit: 3, delay: 'PT10S', backoff: 2 } }, failure);
      expect(next).to.deep.include({ status: 'waiting', retries: 1, date: '2013-01-12T10:00:12.000Z' });
    });

    it('with retries exhausted: error', () => {
      const next = after({ retry: { limit: 3, delay: 'PT10S' }, retries: 3 }, failure);
      expect(next).to.deep.include({ status: 'error', retries: 3, date: DATE });
    });

    it('a repeating task with no retry left ends in error', () => {
      const next = after({ repeat: { hours: 1 }, repetitions: 4 }, failure);
      expect(next).to.deep.include({ status: 'error', repetitions: 4, date: DATE });
    });

    it('a retry of a repeating task keeps the series anchor', () => {
      const next = after({ repeat: { hours: 1 }, retry: { limit: 1, delay: 'PT5M' } }, failure);
      expect(next).to.deep.include({ status: 'waiting', anchor_date: DATE, date: '2013-01-12T10:05:02.000Z' });
    });
  });

  describe('canceled', () => {
    it('a started run counts and keeps its result untouched', () => {
      const next = after({ result: 'kept', executions: 1 }, { kind: 'canceled' });
      expect(next).to.deep.include({ status: 'canceled', result: 'kept', executions: 2 });
      expect(next.last_run?.finished_at).to.equal('2013-01-12T10:00:02.000Z');
      expect(next).to.not.have.property('lease');
    });

    it('a run that never started does not count', () => {
      const next = after({ executions: 1 }, { kind: 'canceled' }, 10, { ...run, startedAtMs: Number.NaN });
      expect(next).to.deep.include({ status: 'canceled', executions: 1 });
      expect(next).to.not.have.property('last_run');
    });
  });

  describe('history', () => {
    const entry = (n: number): HistoryEntry => ({
      started_at: `2013-01-0${n}T00:00:00.000Z`,
      finished_at: `2013-01-0${n}T00:00:01.000Z`,
      duration_ms: 1000,
      worker: 'nightly',
      instance: 'old',
      status: 'done',
    });
    const cases: { name: string; earlier: unknown; limit: number; expectedLength: number | undefined }[] = [
      { name: 'starts with the first run', earlier: undefined, limit: 10, expectedLength: 1 },
      { name: 'grows up to the limit', earlier: [entry(3), entry(2)], limit: 10, expectedLength: 3 },
      { name: 'keeps the newest at the limit', earlier: [entry(3), entry(2), entry(1)], limit: 3, expectedLength: 3 },
      { name: 'drops extra entries when the limit shrank', earlier: [entry(5), entry(4), entry(3), entry(2), entry(1)], limit: 2, expectedLength: 2 },
      { name: 'limit 0 keeps no history field', earlier: [entry(1)], limit: 0, expectedLength: undefined },
      { name: 'a mangled history is replaced', earlier: 'oops', limit: 10, expectedLength: 1 },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const next = after(c.earlier === undefined ? {} : { history: c.earlier }, success(1), c.limit);
        expect(next.history?.length).to.equal(c.expectedLength);
        if (next.history) {
          expect(next.history[0]).to.deep.include({ status: 'done', instance: 'host-1:42' });
          if (Array.isArray(c.earlier) && next.history.length > 1) expect(next.history[1]).to.deep.equal(c.earlier[0]);
        }
      });
    }
  });

  describe('the job decides its next run', () => {
    const later = (when: RunAgain, result: unknown = { step: 1 }): RunOutcome => ({ kind: 'later', result, when });
    const retry = (delayMs: number): RunOutcome => ({ kind: 'retry', error: { message: 'not yet', code: 'E_RETRY' }, when: { delayMs } });
    const release = (delayMs: number): RunOutcome => ({ kind: 'release', when: { delayMs } });
    const cases: Array<{ name: string; fields: Record<string, unknown>; outcome: RunOutcome; expected: Record<string, unknown>; absent?: string[] }> = [
      {
        name: 'later(5 s): a success, run again 5 s after the run ended',
        fields: { executions: 2, error: { message: 'old' }, retries: 1 },
        outcome: later({ delayMs: 5000 }),
        expected: { status: 'waiting', date: '2013-01-12T10:00:07.000Z', executions: 3, result: { step: 1 }, retries: 0 },
        absent: ['error', 'repetitions', 'lease'],
      },
      {
        name: 'later(date): at that date',
        fields: {},
        outcome: later({ atMs: Date.parse('2013-02-01T00:00:00Z') }),
        expected: { status: 'waiting', date: '2013-02-01T00:00:00.000Z', executions: 1 },
      },
      {
        name: 'later on a repeating task: its date, not the repeat\'s; the anchor stays, no repetition counted',
        fields: { repeat: { hours: 1 }, repetitions: 4 },
        outcome: later({ delayMs: 60_000 }),
        expected: { status: 'waiting', date: '2013-01-12T10:01:02.000Z', anchor_date: DATE, repetitions: 4 },
      },
      {
        name: 'later whatever the repeat says: past its limit too',
        fields: { repeat: { hours: 1, limit: 3 }, repetitions: 3 },
        outcome: later({ delayMs: 1000 }),
        expected: { status: 'waiting', date: '2013-01-12T10:00:03.000Z' },
      },
      {
        name: 'retry(1 min) with no retry policy: a failure, retried, counted',
        fields: { executions: 1 },
        outcome: retry(60_000),
        expected: { status: 'waiting', date: '2013-01-12T10:01:02.000Z', retries: 1, executions: 2, error: { message: 'not yet', code: 'E_RETRY' } },
      },
      {
        name: 'retry past the retry policy\'s limit: the job asked, so it is retried and counted',
        fields: { retry: { limit: 3 }, retries: 3 },
        outcome: retry(1000),
        expected: { status: 'waiting', retries: 4, date: '2013-01-12T10:00:03.000Z' },
      },
      {
        name: 'release: handed back, nothing counted, nothing recorded',
        fields: { executions: 5, retries: 1, result: 'kept', error: { message: 'kept' }, last_run: { kept: true } },
        outcome: release(30_000),
        expected: { status: 'waiting', date: '2013-01-12T10:00:32.000Z', executions: 5, retries: 1, result: 'kept', error: { message: 'kept' }, last_run: { kept: true } },
        absent: ['history', 'lease'],
      },
      {
        name: 'release of a repeating task keeps its anchor',
        fields: { repeat: { hours: 1 } },
        outcome: release(1000),
        expected: { status: 'waiting', date: '2013-01-12T10:00:03.000Z', anchor_date: DATE },
        absent: ['executions', 'repetitions'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const next = after(c.fields, c.outcome);
        expect(next).to.deep.include(c.expected);
        for (const field of c.absent ?? []) expect(next, field).to.not.have.property(field);
      });
    }

    it('later and retry record the run in history; release does not', () => {
      expect(after({}, later({ delayMs: 1 })).history?.[0]).to.include({ status: 'done' });
      expect(after({}, retry(1)).history?.[0]).to.deep.include({ status: 'error', error: { message: 'not yet', code: 'E_RETRY' } });
      expect(after({}, release(1))).to.not.have.property('history');
    });
  });

  describe('no run again sooner than worker.min_repeat_ms after the run ended (issue 19, row 3)', () => {
    // FINISHED is 10:00:02.000; with a 1 s minimum nothing runs before 10:00:03.000.
    const failed: RunOutcome = failure;
    const cases: Array<{ name: string; fields: Record<string, unknown>; outcome: RunOutcome; minRepeatMs?: number; expected: Record<string, unknown> }> = [
      { name: 'retry.delay 0: raised to the minimum', fields: { retry: { limit: 1_000_000, delay: 0 } }, outcome: failed, expected: { status: 'waiting', date: '2013-01-12T10:00:03.000Z', retries: 1 } },
      { name: 'retry.delay 0 with backoff, later failures: still the minimum', fields: { retry: { limit: 9, delay: 'PT0S', backoff: 4 }, retries: 5 }, outcome: failed, expected: { date: '2013-01-12T10:00:03.000Z', retries: 6 } },
      { name: 'retry.delay 200 ms under a 5 s minimum', fields: { retry: { limit: 3, delay: { ms: 200 } } }, outcome: failed, minRepeatMs: 5000, expected: { date: '2013-01-12T10:00:07.000Z' } },
      { name: 'retry.delay × backoff past the minimum: as asked', fields: { retry: { limit: 9, delay: { ms: 400 }, backoff: 3 }, retries: 2 }, outcome: failed, expected: { date: '2013-01-12T10:00:05.600Z' } },
      { name: 'ctx.later(0)', fields: {}, outcome: { kind: 'later', result: null, when: { delayMs: 0 } }, expected: { status: 'waiting', date: '2013-01-12T10:00:03.000Z' } },
      { name: 'ctx.later(a date already past)', fields: {}, outcome: { kind: 'later', result: null, when: { atMs: Date.parse('2013-01-12T09:00:00Z') } }, expected: { date: '2013-01-12T10:00:03.000Z' } },
      { name: 'ctx.retry(10 ms)', fields: {}, outcome: { kind: 'retry', error: { message: 'again' }, when: { delayMs: 10 } }, expected: { date: '2013-01-12T10:00:03.000Z', retries: 1 } },
      { name: 'ctx.release(0)', fields: {}, outcome: { kind: 'release', when: { delayMs: 0 } }, expected: { date: '2013-01-12T10:00:03.000Z' } },
      { name: 'ctx.release(0) on a run-now extra run: run_now raised too', fields: { date: '2013-01-12T12:00:00Z', repeat: { hours: 2 }, run_now: DATE }, outcome: { kind: 'release', when: { delayMs: 0 } }, expected: { date: '2013-01-12T12:00:00Z', run_now: '2013-01-12T10:00:03.000Z' } },
      { name: 'ctx.later(2 min) under a 1 min minimum: as asked', fields: {}, outcome: { kind: 'later', result: null, when: { delayMs: 120_000 } }, minRepeatMs: 60_000, expected: { date: '2013-01-12T10:02:02.000Z' } },
      // Starts stay a whole repeat apart, which validate holds to the minimum: a run that outlasted
      // its 1 s interval (10:00:00.250 to 10:00:02) is followed by the series' own next date.
      { name: 'a repeat keeps its own dates (validate refuses one shorter than the minimum)', fields: { repeat: { seconds: 1 } }, outcome: success(null), expected: { date: '2013-01-12T10:00:02.000Z' } },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(after(c.fields, c.outcome, 10, run, c.minRepeatMs)).to.deep.include(c.expected);
      });
    }
  });

  describe('no document larger than worker.max_task_size (issue 19, row 5)', () => {
    it('a result that would make the task too big is not stored: the run fails with E_TASK_TOO_LARGE, the old result stays', () => {
      const next = after({ result: 'small', data: 'x'.repeat(600_000) }, success('y'.repeat(500_000)));
      expect(next.status).to.equal('error');
      expect(next.error?.code).to.equal('E_TASK_TOO_LARGE');
      expect(next.error?.message).to.match(/^the job's result would make the task \d+ bytes, more than the 1000000 a task may have \(worker\.max_task_size\)/);
      expect(next.result).to.equal('small');
      expect(next.executions).to.equal(1);
    });

    it('with a retry policy, that failure is retried like any other', () => {
      const next = after({ retry: { limit: 2 }, data: 'x'.repeat(600_000) }, success('y'.repeat(500_000)));
      expect(next).to.deep.include({ status: 'waiting', retries: 1 });
      expect(next.error?.code).to.equal('E_TASK_TOO_LARGE');
    });

    it('a result that fits is stored', () => {
      expect(after({ data: 'x'.repeat(600_000) }, success('y'.repeat(300_000)))).to.deep.include({ status: 'done', result: 'y'.repeat(300_000) });
    });
  });

  describe('run now (run_now before the date: one extra run)', () => {
    const NEXT = '2013-01-12T12:00:00.000Z';
    const ASKED = '2013-01-12T10:00:00.000Z';

    it('a one-shot task: done after its run now, run_now removed', () => {
      const next = after({ date: NEXT, run_now: ASKED }, success('now'));
      expect(next).to.deep.include({ status: 'done', result: 'now', executions: 1, date: NEXT });
      expect(next).to.not.have.property('run_now');
    });

    it('a repeating task: waiting at the date it had, no repetition counted, no anchor moved', () => {
      const next = after({ date: NEXT, repeat: { hours: 2 }, repetitions: 3, run_now: ASKED }, success(null));
      expect(next).to.deep.include({ status: 'waiting', date: NEXT, repetitions: 3, executions: 1 });
      expect(next).to.not.have.property('run_now');
      expect(next).to.not.have.property('anchor_date');
    });

    it('a repeating task whose extra run failed (no retry): the series neither ends nor moves', () => {
      const next = after({ date: NEXT, repeat: { hours: 2 }, retries: 0, run_now: ASKED }, failure);
      expect(next).to.deep.include({ status: 'waiting', date: NEXT, retries: 0, error: { message: 'boom', code: 'E_BOOM' } });
      expect(next).to.not.have.property('run_now');
    });

    it('a one-shot task whose run now failed with no retry: error, as any run', () => {
      const next = after({ date: NEXT, run_now: ASKED }, failure);
      expect(next).to.deep.include({ status: 'error', date: NEXT });
    });

    it('a one-shot task whose run now failed with a retry left: retried', () => {
      const next = after({ date: NEXT, run_now: ASKED, retry: { limit: 1, delay: 'PT10S' } }, failure);
      expect(next).to.deep.include({ status: 'waiting', retries: 1, date: '2013-01-12T10:00:12.000Z' });
    });

    it('an extra run released: asked again through run_now, the date stays', () => {
      const next = after({ date: NEXT, repeat: { hours: 2 }, run_now: ASKED }, { kind: 'release', when: { delayMs: 5000 } });
      expect(next).to.deep.include({ status: 'waiting', date: NEXT, run_now: '2013-01-12T10:00:07.000Z' });
    });

    it('run_now after the date (the task was due anyway): an ordinary run, run_now removed', () => {
      const next = after({ repeat: { hours: 1 }, run_now: '2013-01-12T10:00:00.100Z' }, success(null));
      expect(next).to.deep.include({ status: 'waiting', date: '2013-01-12T11:00:00.000Z', repetitions: 1 });
      expect(next).to.not.have.property('run_now');
    });

    it('a run now asked while the run went on (a new run_now): kept for the next run', () => {
      const { doc, parsed } = task({ date: NEXT, repeat: { hours: 2 }, run_now: ASKED });
      const askedAgain = '2013-01-12T10:00:01.000Z';
      const next = nextState({ ...doc, run_now: askedAgain }, parsed, success(null), run, { historyLimit: 10 });
      expect(next).to.deep.include({ status: 'waiting', date: NEXT, run_now: askedAgain });
    });

    it('a run now asked during a run of a task that had none: kept', () => {
      const { doc, parsed } = task({ repeat: { hours: 1 } });
      const next = nextState({ ...doc, run_now: '2013-01-12T10:00:01.000Z' }, parsed, success(null), run, { historyLimit: 10 });
      expect(next).to.deep.include({ status: 'waiting', date: '2013-01-12T11:00:00.000Z', run_now: '2013-01-12T10:00:01.000Z' });
    });
  });

  it('counters a user mangled restart from zero', () => {
    const next = after({ executions: 'many', retries: -3, repeat: 'PT1H', repetitions: 1.5 }, success(null));
    expect(next).to.deep.include({ executions: 1, retries: 0, repetitions: 1 });
  });
});

describe('invalidState and canceledState', () => {
  const doc: TaskDoc = { _id: 't', _rev: '2-x', status: 'scheduled', date: 'soon', lease, extra: 1 };

  it('invalidState: error with E_TASK_INVALID naming the field, lease removed', () => {
    const next = invalidState(doc, 'date', 'date: "soon" is not an ISO 8601 date');
    expect(next).to.deep.include({ status: 'error', error: { message: 'date: "soon" is not an ISO 8601 date', code: 'E_TASK_INVALID' }, extra: 1 });
    expect(next).to.not.have.property('lease');
    expect(doc.lease).to.equal(lease);
  });

  it('invalidState prefixes the field when the message does not name it', () => {
    expect(invalidState(doc, 'job', 'unknown job "x"').error?.message).to.equal('job: unknown job "x"');
  });

  it('canceledState: canceled, lease removed, nothing else touched', () => {
    const next = canceledState(doc);
    expect(next).to.deep.equal({ _id: 't', _rev: '2-x', status: 'canceled', date: 'soon', extra: 1 });
    expect(doc.status).to.equal('scheduled');
  });
});

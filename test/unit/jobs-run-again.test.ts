/**
 * Jobs that decide their next run: `ctx.later/retry/release` (modern form) and
 * `task.emit('later' | 'retry' | 'release', ...)` (EventEmitter form) end a run with the outcome
 * nextState turns into the next date; a bad delay fails the run with E_RUN_AGAIN.
 */
import { expect } from 'chai';
import { DEFAULT_RELEASE_DELAY_MS, parseDelay } from '../../src/jobs/run-again';
import { runJob, type JobFunction } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';

const doc = (fields: Partial<TaskDoc> = {}): TaskDoc => ({ _id: 't1', worker: 'w', date: '2030-01-01T00:00:00Z', job: 'j', ...fields });

function run(fn: JobFunction, fields: Partial<TaskDoc> = {}): Promise<RunOutcome> {
  return runJob(fn, doc(fields), { signal: new AbortController().signal, log: silentLogger() });
}

const NOW = Date.parse('2026-01-05T09:00:00Z');

describe('parseDelay: what ctx.later/retry/release accept', () => {
  const ok: Array<[string, unknown, object]> = [
    ['milliseconds', 5000, { delayMs: 5000 }],
    ['zero (again at once)', 0, { delayMs: 0 }],
    ['a compact duration', '5m', { delayMs: 300_000 }],
    ['a compact duration of several units', '1h30m', { delayMs: 5_400_000 }],
    ['an ISO 8601 duration', 'PT90S', { delayMs: 90_000 }],
    ['a duration object', { minutes: 2 }, { delayMs: 120_000 }],
    ['a month from now is as long as the coming month', '1M', { delayMs: 31 * 86_400_000 }],
    ['a Date', new Date('2026-02-01T00:00:00Z'), { atMs: Date.parse('2026-02-01T00:00:00Z') }],
    ['an ISO 8601 date', '2026-02-01T10:00:00+01:00', { atMs: Date.parse('2026-02-01T09:00:00Z') }],
  ];
  for (const [name, value, when] of ok) {
    it(`${name}: ${JSON.stringify(value)}`, () => {
      expect(parseDelay(value, 'ctx.later(delay)', NOW)).to.deep.equal({ ok: true, when });
    });
  }

  const bad: Array<[string, unknown]> = [
    ['negative milliseconds', -1],
    ['a negative duration', '-5m'],
    ['not a number', Number.NaN],
    ['infinity', Number.POSITIVE_INFINITY],
    ['words', 'soon'],
    ['an unknown unit', '5 fortnights'],
    ['an invalid Date', new Date('nope')],
    ['an array', [5]],
    ['null', null],
    ['a boolean', true],
    ['an object with an unknown key', { fortnights: 1 }],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}, naming the call`, () => {
      const parsed = parseDelay(value, 'ctx.later(delay)', NOW);
      expect(parsed.ok).to.equal(false);
      expect((parsed as { message: string }).message).to.match(/^ctx\.later\(delay\)/);
    });
  }
});

describe('runJob: a job that decides its next run', () => {
  const forms: Array<{ form: string; later: JobFunction; retry: JobFunction; release: JobFunction; releaseDefault: JobFunction; bad: JobFunction }> = [
    {
      form: 'modern (return ctx.later(...))',
      later: async (_task, ctx) => ctx.later('5m', { page: 2 }),
      retry: async (_task, ctx) => ctx.retry(30_000, 'the API said 503'),
      release: async (_task, ctx) => ctx.release('PT10S'),
      releaseDefault: (_task, ctx) => ctx.release(),
      bad: async (_task, ctx) => ctx.later(-5),
    },
    {
      form: 'EventEmitter (task.emit("later", ...))',
      later: (task) => void task.emit('later', '5m', { page: 2 }),
      retry: (task) => void setImmediate(() => task.emit('retry', 30_000, 'the API said 503')),
      release: (task) => void task.emit('release', 'PT10S'),
      releaseDefault: (task) => void task.emit('release'),
      bad: (task) => void task.emit('later', 'whenever'),
    },
  ];
  for (const f of forms) {
    describe(f.form, () => {
      it('later: a success with its result, again after the delay', async () => {
        expect(await run(f.later)).to.deep.equal({ kind: 'later', result: { page: 2 }, when: { delayMs: 300_000 } });
      });

      it('retry: a failure with the reason given, again after the delay', async () => {
        expect(await run(f.retry)).to.deep.equal({ kind: 'retry', error: { message: 'the API said 503', code: 'E_RETRY' }, when: { delayMs: 30_000 } });
      });

      it('release: handed back, again after the delay', async () => {
        expect(await run(f.release)).to.deep.equal({ kind: 'release', when: { delayMs: 10_000 } });
      });

      it(`release with no delay: again after ${DEFAULT_RELEASE_DELAY_MS} ms`, async () => {
        expect(await run(f.releaseDefault)).to.deep.equal({ kind: 'release', when: { delayMs: DEFAULT_RELEASE_DELAY_MS } });
      });

      it('a bad delay fails the run with E_RUN_AGAIN naming the value', async () => {
        const outcome = await run(f.bad);
        expect(outcome.kind).to.equal('failure');
        expect((outcome as { error: { code: string; message: string } }).error.code).to.equal('E_RUN_AGAIN');
        expect((outcome as { error: { message: string } }).error.message).to.match(/ctx\.later\(delay\)/);
      });
    });
  }

  it('retry with no reason, or an Error: a message and a code all the same', async () => {
    expect(await run((_task, ctx) => ctx.retry(1))).to.deep.include({ error: { message: 'the job asked to be retried', code: 'E_RETRY' } });
    const withError = await run((_task, ctx) => ctx.retry(1, Object.assign(new Error('quota'), { code: 'E_QUOTA' })));
    expect(withError).to.deep.include({ error: { message: 'quota', code: 'E_QUOTA' } });
  });

  it('throw ctx.retry(...) says the same as returning it', async () => {
    const outcome = await run(async (_task, ctx) => {
      throw ctx.retry('1m');
    });
    expect(outcome).to.deep.include({ kind: 'retry', when: { delayMs: 60_000 } });
  });

  it('later with a result that cannot be stored fails the run, as a plain return would', async () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const outcome = await run((_task, ctx) => ctx.later(1000, cycle));
    expect(outcome.kind).to.equal('failure');
    expect((outcome as { error: { code: string } }).error.code).to.equal('E_RESULT_NOT_JSON');
  });

  it('the first of later and done counts; what the job does after is ignored', async () => {
    const outcome = await run((task) => {
      task.emit('later', 1000);
      task.emit('done', 'too late');
      task.emit('retry', 5);
    });
    expect(outcome).to.deep.equal({ kind: 'later', result: null, when: { delayMs: 1000 } });
  });

  it('ctx.runs: 1 for the first run, executions + 1 after', async () => {
    const runs: JobFunction = (_task, ctx) => ctx.runs;
    expect(await run(runs)).to.deep.equal({ kind: 'success', result: 1 });
    expect(await run(runs, { executions: 9 })).to.deep.equal({ kind: 'success', result: 10 });
    expect(await run(runs, { executions: 'many' as unknown as number })).to.deep.equal({ kind: 'success', result: 1 });
  });

  it('a job that builds ctx.later and then throws has failed', async () => {
    const outcome = await run((_task, ctx) => {
      ctx.later(1000);
      throw new Error('changed its mind');
    });
    expect(outcome).to.deep.include({ kind: 'failure', error: { message: 'changed its mind' } });
  });
});

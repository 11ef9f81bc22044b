import { expect } from 'chai';
import * as path from 'node:path';
import { loadJobs, type JobRegistry } from '../../src/jobs/loader';
import { MAX_RESULT_BYTES, runJob, type JobContext, type JobFunction, type JobTask } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';

const FIXTURE_JOBS = path.resolve(__dirname, '../../../test/fixtures/jobs');

function taskDoc(fields: Partial<TaskDoc> = {}): TaskDoc {
  return { _id: 'task-1', worker: 'w', date: '2030-01-01T00:00:00Z', job: { name: 'j', arguments: [] }, ...fields };
}

function run(fn: JobFunction, options: { doc?: TaskDoc; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunOutcome> {
  return runJob(fn, options.doc ?? taskDoc(), {
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger(),
    timeoutMs: options.timeoutMs,
  });
}

function failureCode(outcome: RunOutcome): string | undefined {
  expect(outcome.kind).to.equal('failure');
  return (outcome as { error: { code?: string } }).error.code;
}

/** Resolves on the next turns of the event loop, long enough for late settlements to land. */
function afterLateSettlements(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

describe('runJob', () => {
  let unhandled: unknown[];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled, 'unhandled rejections').to.deep.equal([]);
  });

  describe('the modern form', () => {
    it('succeeds with what an async job resolves', async () => {
      const outcome = await run(async (task) => ({ id: task._id, args: (task.job as { arguments: unknown[] }).arguments }));
      expect(outcome).to.deep.equal({ kind: 'success', result: { id: 'task-1', args: [] } });
    });

    it('succeeds with a value returned synchronously', async () => {
      expect(await run(() => 42)).to.deep.equal({ kind: 'success', result: 42 });
    });

    it('stores an async job that returns nothing as a null result', async () => {
      expect(await run(async () => undefined)).to.deep.equal({ kind: 'success', result: null });
    });

    it('accepts any thenable, not only native promises', async () => {
      const thenable = { then: (resolve: (value: unknown) => void) => resolve('from a thenable') };
      expect(await run(() => thenable)).to.deep.equal({ kind: 'success', result: 'from a thenable' });
    });

    it('fails with the message and code of a rejection', async () => {
      const outcome = await run(async () => {
        throw Object.assign(new Error('no route to billing'), { code: 'E_BILLING' });
      });
      expect(outcome).to.deep.equal({ kind: 'failure', error: { message: 'no route to billing', code: 'E_BILLING' } });
    });

    it('fails on a synchronous throw, even of a non-Error', async () => {
      expect(failureCode(await run(() => { throw Object.assign(new Error('sync'), { code: 'E_SYNC' }); }))).to.equal('E_SYNC');
      const outcome = await run(() => {
        throw 'a plain string'; // eslint-disable-line no-throw-literal
      });
      expect(outcome).to.deep.equal({ kind: 'failure', error: { message: 'a plain string' } });
    });

    it('gives the job a signal and a logger', async () => {
      let seen: JobContext | undefined;
      await run(async (_task, ctx) => {
        seen = ctx;
      });
      expect(seen!.signal).to.be.instanceOf(AbortSignal);
      expect(seen!.signal.aborted).to.equal(false);
      expect(seen!.log.info).to.be.a('function');
    });
  });

  describe('the original EventEmitter form', () => {
    it("succeeds when the job emits 'done' later, with its result", async () => {
      const outcome = await run((task) => {
        setImmediate(() => task.emit('done', { replicated: task._id }));
      });
      expect(outcome).to.deep.equal({ kind: 'success', result: { replicated: 'task-1' } });
    });

    it("succeeds with a null result on a bare emit('done'), even a synchronous one", async () => {
      expect(await run((task) => void task.emit('done'))).to.deep.equal({ kind: 'success', result: null });
    });

    it("fails on emit('error', err) with its message and code", async () => {
      const outcome = await run((task) => {
        setImmediate(() => task.emit('error', Object.assign(new Error('replication refused'), { code: 'E_REPL' })));
      });
      expect(outcome).to.deep.equal({ kind: 'failure', error: { message: 'replication refused', code: 'E_REPL' } });
    });

    it("fails with 'job reported an error' on a bare emit('error')", async () => {
      const outcome = await run((task) => void setImmediate(() => task.emit('error')));
      expect(outcome.kind).to.equal('failure');
      expect((outcome as { error: { message: string } }).error.message).to.equal('job reported an error');
    });

    it('carries the document fields, and its changes never reach the caller', async () => {
      const doc = taskDoc({ job: { name: 'j', arguments: [2, 3, 'test'] }, customer: { id: 7 } });
      const outcome = await run((task) => {
        (task.customer as { id: number }).id = 99;
        (task.job as { arguments: unknown[] }).arguments.push('mutated');
        task.emit('done', { customer: task.customer, date: task.date });
      }, { doc });
      expect(outcome).to.deep.equal({ kind: 'success', result: { customer: { id: 99 }, date: '2030-01-01T00:00:00Z' } });
      expect(doc.customer).to.deep.equal({ id: 7 });
      expect((doc.job as { arguments: unknown[] }).arguments).to.deep.equal([2, 3, 'test']);
    });

    it('copies a document nested past structuredClone\'s reach (3,000 levels) once, and the job reads it', async () => {
      let data: unknown = 'bottom';
      for (let i = 0; i < 3000; i++) data = { a: data };
      const doc = taskDoc({ data });
      const outcome = await run((task, ctx) => {
        let depth = 0;
        for (let at = ctx.doc.data as { a?: unknown }; typeof at === 'object' && at !== null; at = at.a as { a?: unknown }) depth++;
        // The emitter's fields are the same copy as ctx.doc: one copy per run.
        return { depth, same: task.data === ctx.doc.data, copied: ctx.doc.data !== doc.data };
      }, { doc });
      expect(outcome).to.deep.equal({ kind: 'success', result: { depth: 3000, same: true, copied: true } });
    });

    it('still works when the document has fields named like EventEmitter members', async () => {
      // JSON.parse makes "__proto__" an own field, as a document read from CouchDB would have it
      const doc = JSON.parse(
        '{"_id":"t","on":1,"emit":"x","once":null,"_events":{},"__proto__":{"polluted":true},"constructor":"c","signal":"mine","keep":true}',
      ) as TaskDoc;
      let seen: { task: JobTask; ctx: JobContext } | undefined;
      const outcome = await run((task, ctx) => {
        seen = { task, ctx };
        setImmediate(() => task.emit('done', { keep: task.keep }));
      }, { doc });
      expect(outcome).to.deep.equal({ kind: 'success', result: { keep: true } });
      expect(seen!.task.signal).to.equal(seen!.ctx.signal);
      expect((seen!.task as unknown as { polluted?: unknown }).polluted).to.equal(undefined);
      // the whole document, clashing fields included, is in ctx.doc
      expect(seen!.ctx.doc).to.deep.equal(doc);
    });

    it('gives task.signal, aborted when the run times out', async () => {
      let signal: AbortSignal | undefined;
      const outcome = await run((task) => {
        signal = task.signal;
      }, { timeoutMs: 30 });
      expect(failureCode(outcome)).to.equal('E_TIMEOUT');
      expect(signal!.aborted).to.equal(true);
    });
  });

  describe('the first signal wins', () => {
    it("keeps an emitted 'done' over a later rejection", async () => {
      const outcome = await run(async (task) => {
        task.emit('done', 'first');
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('second');
      });
      expect(outcome).to.deep.equal({ kind: 'success', result: 'first' });
      await afterLateSettlements();
    });

    it("ignores emits after the job resolved, and a late emit('error') does not throw in the job", async () => {
      let lateEmitThrew: unknown = 'not run';
      const outcome = await run(async (task) => {
        setImmediate(() => {
          try {
            task.emit('error', new Error('late'));
            task.emit('done', 'late');
            lateEmitThrew = false;
          } catch (err) {
            lateEmitThrew = err;
          }
        });
        return 'resolved';
      });
      expect(outcome).to.deep.equal({ kind: 'success', result: 'resolved' });
      await afterLateSettlements();
      expect(lateEmitThrew).to.equal(false);
    });

    it('ignores a second done and an error after the first done', async () => {
      const outcome = await run((task) => {
        task.emit('done', 1);
        task.emit('done', 2);
        task.emit('error', new Error('3'));
      });
      expect(outcome).to.deep.equal({ kind: 'success', result: 1 });
    });

    it('ignores a rejection that comes after the timeout', async () => {
      const outcome = await run(
        (_task, ctx) =>
          new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => setImmediate(() => reject(new Error('too late'))));
          }),
        { timeoutMs: 20 },
      );
      expect(failureCode(outcome)).to.equal('E_TIMEOUT');
      await afterLateSettlements();
    });
  });

  describe('timeout and cancel', () => {
    it('fails with E_TIMEOUT and aborts the signal with a JobTimeoutError', async () => {
      let signal: AbortSignal | undefined;
      const started = Date.now();
      const outcome = await run(
        (_task, ctx) => {
          signal = ctx.signal;
          return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        },
        { timeoutMs: 50 },
      );
      expect(outcome).to.deep.equal({ kind: 'failure', error: { message: 'job timed out after 50 ms', code: 'E_TIMEOUT' } });
      expect(signal!.aborted).to.equal(true);
      expect((signal!.reason as { code?: string }).code).to.equal('E_TIMEOUT');
      expect(Date.now() - started).to.be.below(1000);
    });

    it('ends at the timeout even when the job ignores its signal and never settles', async () => {
      const outcome = await run(() => new Promise(() => undefined), { timeoutMs: 30 });
      expect(failureCode(outcome)).to.equal('E_TIMEOUT');
    });

    it('does not time out a job that finishes in time', async () => {
      expect(await run(async () => 'quick', { timeoutMs: 1000 })).to.deep.equal({ kind: 'success', result: 'quick' });
    });

    it("is canceled when the caller's signal aborts, and aborts the job's signal", async () => {
      const caller = new AbortController();
      let jobSignal: AbortSignal | undefined;
      const outcome = run(
        (_task, ctx) => {
          jobSignal = ctx.signal;
          setImmediate(() => caller.abort());
          return new Promise(() => undefined);
        },
        { signal: caller.signal },
      );
      expect(await outcome).to.deep.equal({ kind: 'canceled' });
      expect(jobSignal!.aborted).to.equal(true);
    });

    it('does not start a job whose run is canceled already', async () => {
      const caller = new AbortController();
      caller.abort();
      let started = false;
      const outcome = await run(
        () => {
          started = true;
        },
        { signal: caller.signal },
      );
      expect(outcome).to.deep.equal({ kind: 'canceled' });
      expect(started).to.equal(false);
    });
  });

  describe('results that cannot be stored', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cases: Array<[string, unknown]> = [
      ['a function', () => 1],
      ['an object holding a function', { run: () => 1 }],
      ['a BigInt', { big: 10n }],
      ['a symbol inside an array', [Symbol('s')]],
      ['a cycle', cyclic],
    ];
    for (const [label, value] of cases) {
      it(`fails a result that is ${label}`, async () => {
        expect(failureCode(await run(async () => value))).to.equal('E_RESULT_NOT_JSON');
      });
    }

    it('fails a result larger than 1 MB serialised', async () => {
      const outcome = await run(async () => ({ text: 'x'.repeat(MAX_RESULT_BYTES) }));
      expect(failureCode(outcome)).to.equal('E_RESULT_TOO_LARGE');
    });

    it('stores a result as its JSON copy (a Date becomes its ISO string)', async () => {
      const when = new Date('2030-01-01T00:00:00Z');
      expect(await run(async () => ({ when }))).to.deep.equal({ kind: 'success', result: { when: '2030-01-01T00:00:00.000Z' } });
    });
  });

  describe('the fixture jobs', () => {
    let jobs: JobRegistry;
    before(async () => {
      jobs = await loadJobs(FIXTURE_JOBS);
    });
    const job = (name: string): JobFunction => {
      const fn = jobs.resolve(name);
      expect(fn, name).to.be.a('function');
      return fn!;
    };

    it('behave as named', async () => {
      expect(await run(job('succeeds'))).to.deep.equal({ kind: 'success', result: { ok: true, args: [] } });
      expect(failureCode(await run(job('throws')))).to.equal('E_FIXTURE_THROWS');
      expect(failureCode(await run(job('rejects')))).to.equal('E_FIXTURE_REJECTS');
      expect(await run(job('emitter-done'))).to.deep.equal({ kind: 'success', result: { emitted: true, id: 'task-1' } });
      expect((await run(job('emitter-error'))).kind).to.equal('failure');
      expect(failureCode(await run(job('hangs'), { timeoutMs: 30 }))).to.equal('E_TIMEOUT');
      const slowDoc = taskDoc({ job: { name: 'slow', arguments: [10] } });
      expect(await run(job('slow'), { doc: slowDoc })).to.deep.equal({ kind: 'success', result: { slept: 10 } });
      const tooSlow = taskDoc({ job: { name: 'slow', arguments: [10_000] } });
      expect(failureCode(await run(job('slow'), { doc: tooSlow, timeoutMs: 30 }))).to.equal('E_TIMEOUT');
    });
  });
});

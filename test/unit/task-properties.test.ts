import { expect } from 'chai';
import fc from 'fast-check';
import { parseTaskDate } from '../../src/task/dates';
import { nextState } from '../../src/task/next-state';
import { Repeat } from '../../src/task/repeat';
import { nextRepeat } from '../../src/task/series';
import { zeroDuration } from '../../src/task/duration';
import { validateTask } from '../../src/task/validate';
import type { RunOutcome, TaskDoc } from '../../src/types';

const FIELDS = ['_id', 'worker', 'date', 'job', 'data', 'status', 'repeat', 'retry', 'timeout', 'executions', 'repetitions', 'retries', 'history', 'anchor_date', '__proto__', 'constructor'];

/** Values that come close to valid ones, so rejections deep inside each check are reached. */
const nearValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom('nightly', '2013-01-12', '2013-02-30', 'P1D', 'PT0S', 'waiting', 'cancel', 'generate_billing', ''),
  fc.record({ name: fc.oneof(fc.string(), fc.jsonValue()), arguments: fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue()) }, { requiredKeys: [] }),
  fc.dictionary(fc.constantFrom('days', 'M', 'm', 'limit', 'until', 'misfire', 'cron', 'timezone', 'delay', 'backoff', 'dayz', '__proto__'), fc.jsonValue()),
  fc.double(),
  fc.integer(),
);

const mixedDoc = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string()), nearValue);

const isoDate = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());

const duration = fc.oneof(
  fc.record({ days: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ M: fc.integer({ min: 1, max: 24 }), d: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ ms: fc.integer({ min: 1, max: 10_000 }) }),
  fc.constantFrom('P1D', 'PT1S', 'P1M7D', 'P1Y', 'PT0.5S'),
);

const validDoc = fc.record(
  {
    _id: fc.string({ minLength: 1 }),
    worker: fc.constantFrom('nightly', 'billing'),
    date: isoDate,
    job: fc.oneof(fc.constant('succeeds'), fc.record({ name: fc.constant('x'), arguments: fc.array(fc.jsonValue()) })),
    repeat: duration.chain((every) =>
      typeof every === 'string'
        ? fc.constant<unknown>(every)
        : fc.record(
            { limit: fc.integer({ min: 1, max: 5 }), until: isoDate, misfire: fc.constantFrom('run_once', 'skip') },
            { requiredKeys: [] },
          ).map((options) => ({ ...every, ...options })),
    ),
    retry: fc.record(
      { limit: fc.integer({ min: 0, max: 5 }), delay: duration, backoff: fc.double({ min: 1, max: 1e6, noNaN: true }) },
      { requiredKeys: ['limit'] },
    ),
    executions: fc.jsonValue(),
    repetitions: fc.jsonValue(),
    retries: fc.jsonValue(),
    history: fc.jsonValue(),
    anchor_date: fc.oneof(isoDate, fc.jsonValue()),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['_id', 'worker', 'date', 'job'] },
);

const outcome: fc.Arbitrary<RunOutcome> = fc.oneof(
  fc.record({ kind: fc.constant('success' as const), result: fc.oneof(fc.jsonValue(), fc.constant(undefined)) }),
  fc.record({
    kind: fc.constant('failure' as const),
    error: fc.record({ message: fc.string(), code: fc.string() }, { requiredKeys: ['message'] }),
  }),
  fc.constant({ kind: 'canceled' as const }),
);

describe('task properties', () => {
  it('validateTask never throws for any JSON value, and every rejection names a field', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const validated = validateTask(value as TaskDoc);
        if (validated.ok) return;
        expect(validated.field).to.be.a('string').that.is.not.empty;
        expect(validated.message).to.be.a('string').that.is.not.empty;
      }),
      { numRuns: 500 },
    );
  });

  it('validateTask never throws for documents mixing real fields with arbitrary values', () => {
    fc.assert(
      fc.property(mixedDoc, (doc) => {
        const validated = validateTask(doc as TaskDoc);
        if (!validated.ok) {
          expect(validated.field).to.be.a('string').that.is.not.empty;
          expect(validated.message).to.be.a('string').that.is.not.empty;
          expect(validated.message.startsWith(validated.field)).to.equal(true, validated.message);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('nextState never throws for a valid task and any outcome, and writes a valid next task', () => {
    fc.assert(
      fc.property(
        validDoc,
        outcome,
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 0, max: 400 * 86_400_000 }),
        fc.integer({ min: 0, max: 20 }),
        (doc, result, lateMs, durationMs, historyLimit) => {
          const validated = validateTask(doc as TaskDoc);
          fc.pre(validated.ok);
          if (!validated.ok) return;
          const startedAtMs = validated.task.dateMs + lateMs;
          const run = { startedAtMs, finishedAtMs: startedAtMs + durationMs, worker: 'nightly', instance: 'i-1' };
          const next = nextState(doc as TaskDoc, validated.task, result, run, { historyLimit });
          expect(next._id).to.equal(doc._id);
          expect(['waiting', 'done', 'error', 'canceled']).to.include(next.status);
          expect(next).to.not.have.property('lease');
          // A canceled run is not a finished run: it leaves history as it was.
          if (result.kind !== 'canceled') {
            if (historyLimit === 0) expect(next).to.not.have.property('history');
            else expect(next.history?.length).to.be.within(1, historyLimit);
          }
          if (next.status === 'waiting') {
            const revalidated = validateTask(next);
            expect(revalidated.ok).to.equal(true);
            // Never early: the next run is after the run that just ended started.
            if (revalidated.ok) expect(revalidated.task.dateMs).to.be.at.least(validated.task.dateMs);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('nextRepeat gives a series date after the current date, matching a step-by-step walk', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 3_000_000 }),
        fc.constantFrom<Repeat['misfire']>('run_once', 'skip'),
        (stepMs, steps, lateMs, misfire) => {
          const anchorMs = Date.parse('2013-01-12T00:00:00Z');
          const dateMs = anchorMs + steps * stepMs;
          const nowMs = dateMs + lateMs;
          const repeat: Repeat = { kind: 'interval', every: { ...zeroDuration(), milliseconds: stepMs }, misfire };
          const next = nextRepeat(repeat, { anchorMs, dateMs, repetitions: 1, nowMs });
          // Walk the series one date at a time, as a reference.
          let k = steps + 1;
          while (anchorMs + (k + 1) * stepMs <= nowMs) k++;
          const firstAfterDate = anchorMs + (steps + 1) * stepMs;
          const expected =
            firstAfterDate > nowMs ? firstAfterDate : misfire === 'run_once' ? anchorMs + k * stepMs : anchorMs + (k + 1) * stepMs;
          expect(next?.dateMs).to.equal(expected);
        },
      ),
    );
  });

  it('formatted next dates parse back to the same instant', () => {
    fc.assert(
      fc.property(isoDate, (text) => {
        const parsed = parseTaskDate(text);
        expect(parsed.ok && new Date(parsed.ms).toISOString()).to.equal(text);
      }),
    );
  });
});

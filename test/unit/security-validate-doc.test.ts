/**
 * The design document's validate_doc_update, run from its stored source text the way both
 * servers run it: compiled in a fresh JavaScript context (as couchjs does), called with a
 * document parsed from JSON there, and judged by what it throws (`{forbidden}` is a 403; any
 * other throw would be a 500).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as vm from 'node:vm';
import { VALIDATE_DOC_UPDATE_SOURCE } from '../../src/store/for-operators/validate-doc';
import { invalidState, canceledState, nextState } from '../../src/task/next-state';
import { MAX_DATE_MS } from '../../src/task/dates';
import { validateTask } from '../../src/task/validate';
import { STATUSES, type RunOutcome, type TaskDoc } from '../../src/types';

type Verdict = { ok: true } | { ok: false; reason: string };

/** The function as the database holds it, in a context of its own. */
const context = vm.createContext({});
const designValidate = vm.runInContext(`(${VALIDATE_DOC_UPDATE_SOURCE})`, context) as (doc: unknown, old: unknown, ctx: unknown, sec: unknown) => void;
/** pouchdb-server's couchdb-eval compiles it as `new Function("return " + source)`. */
const pouchValidate = new Function(`return ${VALIDATE_DOC_UPDATE_SOURCE}`)() as typeof designValidate;

const userCtx = { db: 'tasks', name: null, roles: [] };
const secObj = { admins: { names: [], roles: [] }, members: { names: [], roles: [] } };

/** Call it with the document as the server would: parsed from JSON inside the function's context. */
function validateInDb(doc: unknown, validate = designValidate): Verdict {
  const json = JSON.stringify(doc) ?? 'null';
  const parsed = vm.runInContext(`JSON.parse(${JSON.stringify(json)})`, context) as unknown;
  try {
    validate(parsed, null, userCtx, secObj);
    return { ok: true };
  } catch (thrown) {
    const forbidden = (thrown as { forbidden?: unknown } | null)?.forbidden;
    if (typeof forbidden !== 'string') throw new Error(`validate_doc_update threw something other than {forbidden: string}: ${String(thrown)}`);
    return { ok: false, reason: forbidden };
  }
}

const FIELD_OF_REASON = /^([A-Za-z_]+(?:\.[A-Za-z_]+)?): \S/;
const soon = '2030-01-12T10:00:00Z';
const valid = { _id: 't1', worker: 'nightly', date: soon, job: { name: 'succeeds', arguments: [1] } };

interface Case {
  name: string;
  doc: Record<string, unknown>;
  /** The field the reason starts with; undefined: accepted. */
  field?: string;
}

const cases: Case[] = [
  { name: 'a valid task', doc: valid },
  { name: 'the short job form with data', doc: { worker: 'w', date: '2013-01-12', job: 'succeeds', data: { a: 1 } } },
  { name: 'every valid status', doc: { ...valid, status: 'reschedule' } },
  { name: 'unknown extra fields, any shape', doc: { ...valid, extra: { deep: [1, { x: null }] }, constructor: 1, hasOwnProperty: 'x' } },
  { name: 'a repeat object with options', doc: { ...valid, repeat: { days: 1, limit: 3, until: '2031-01-01', timezone: 'Europe/Paris', misfire: 'skip' } } },
  { name: 'an ISO repeat', doc: { ...valid, repeat: 'P1M7D' } },
  { name: 'a cron repeat', doc: { ...valid, repeat: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } } },
  { name: 'a retry with a zero delay', doc: { ...valid, retry: { limit: 3, delay: 0, backoff: 2 } } },
  { name: 'a deletion of anything', doc: { _id: 'x', _deleted: true } },
  { name: 'a design document', doc: { _id: '_design/mine', views: {} } },
  { name: "the worker's error on an invalid task", doc: { _id: 'x', worker: 'w', date: 'soon', status: 'error', error: { message: 'date: ...' } } },
  { name: 'a cancel of an invalid task', doc: { _id: 'x', date: 12, status: 'cancel' } },
  { name: 'a missing worker', doc: { date: soon, job: 'succeeds' }, field: 'worker' },
  { name: 'a worker that is a number', doc: { ...valid, worker: 42 }, field: 'worker' },
  { name: 'an empty worker', doc: { ...valid, worker: '' }, field: 'worker' },
  { name: 'a worker with a control character', doc: { ...valid, worker: 'night\u0000ly' }, field: 'worker' },
  { name: 'a missing date', doc: { worker: 'w', job: 'succeeds' }, field: 'date' },
  { name: 'an unparsable date', doc: { ...valid, date: 'tomorrow' }, field: 'date' },
  { name: 'February 30th', doc: { ...valid, date: '2013-02-30' }, field: 'date' },
  { name: 'year 275760 (beyond a Date)', doc: { ...valid, date: '+275760-09-13T00:00:00Z' }, field: 'date' },
  { name: 'a date that is a number', doc: { ...valid, date: 1e300 }, field: 'date' },
  { name: 'a zone offset of +15:00', doc: { ...valid, date: '2013-01-12T10:00:00+15:00' }, field: 'date' },
  { name: 'a missing job', doc: { worker: 'w', date: soon }, field: 'job' },
  { name: 'a job that is an array', doc: { ...valid, job: ['succeeds'] }, field: 'job' },
  { name: 'a job name that is not a string', doc: { ...valid, job: { name: { $gt: '' } } }, field: 'job.name' },
  { name: 'job arguments that are not an array', doc: { ...valid, job: { name: 'x', arguments: { 0: 1 } } }, field: 'job.arguments' },
  { name: 'an unknown status', doc: { ...valid, status: 'sleeping' }, field: 'status' },
  { name: 'a null status', doc: { ...valid, status: null }, field: 'status' },
  { name: 'a repeat of zero length', doc: { ...valid, repeat: { days: 0 } }, field: 'repeat' },
  { name: 'an ISO repeat of zero length', doc: { ...valid, repeat: 'PT0S' }, field: 'repeat' },
  { name: 'a repeat of negative length', doc: { ...valid, repeat: { hours: -1 } }, field: 'repeat.hours' },
  { name: 'a repeat with only options', doc: { ...valid, repeat: { limit: 3 } }, field: 'repeat' },
  { name: 'a repeat key found on Object.prototype', doc: { ...valid, repeat: { constructor: 1 } }, field: 'repeat' },
  { name: 'a repeat limit of zero', doc: { ...valid, repeat: { days: 1, limit: 0 } }, field: 'repeat.limit' },
  { name: 'a repeat that is a number', doc: { ...valid, repeat: 1000 }, field: 'repeat' },
  { name: 'a fractional calendar unit', doc: { ...valid, repeat: { months: 1.5 } }, field: 'repeat.months' },
  { name: 'a cron that is not a string', doc: { ...valid, repeat: { cron: 5 } }, field: 'repeat.cron' },
  { name: 'a retry without a limit', doc: { ...valid, retry: { delay: 'PT1M' } }, field: 'retry.limit' },
  { name: 'a retry with a negative limit', doc: { ...valid, retry: { limit: -1 } }, field: 'retry.limit' },
  { name: 'a retry with a typo', doc: { ...valid, retry: { limit: 1, dealy: 5 } }, field: 'retry' },
  { name: 'a retry backoff below 1', doc: { ...valid, retry: { limit: 1, backoff: 0.5 } }, field: 'retry.backoff' },
  { name: 'a retry delay that is null', doc: { ...valid, retry: { limit: 1, delay: null } }, field: 'retry.delay' },
  { name: 'a timeout of zero', doc: { ...valid, timeout: 0 }, field: 'timeout' },
  { name: 'a timeout past what setTimeout holds', doc: { ...valid, timeout: 2 ** 31 }, field: 'timeout' },
  { name: 'a timeout that is a string', doc: { ...valid, timeout: '1000' }, field: 'timeout' },
  { name: 'a priority and dependencies', doc: { ...valid, priority: -3, after: ['import', 'fx'], after_failure: 'run' } },
  { name: 'a jittered interval repeat', doc: { ...valid, repeat: { hours: 1, jitter: '5m' } } },
  { name: 'a cron repeat with a delay and a jitter', doc: { ...valid, repeat: { cron: '0 * * * *', delay: 'PT30S', jitter: 60000 } } },
  { name: 'a priority that is a string', doc: { ...valid, priority: 'high' }, field: 'priority' },
  { name: 'a fractional priority', doc: { ...valid, priority: 1.5 }, field: 'priority' },
  { name: 'dependencies that are a string', doc: { ...valid, after: 'import' }, field: 'after' },
  { name: 'a dependency that is not a string', doc: { ...valid, after: ['import', 7] }, field: 'after[1]' },
  { name: 'an unknown after_failure', doc: { ...valid, after_failure: 'ignore' }, field: 'after_failure' },
  { name: 'a jitter that is a boolean', doc: { ...valid, repeat: { days: 1, jitter: true } }, field: 'repeat.jitter' },
];

const FIELDS = ['_id', 'worker', 'date', 'job', 'data', 'status', 'repeat', 'retry', 'timeout', 'priority', 'after', 'after_failure', 'history', '__proto__', 'constructor', 'hasOwnProperty'];

/** Values near valid ones, so that each check is reached with values on both sides of it. */
const nearValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom('nightly', '2013-01-12', '2013-02-29', '2012-02-29T23:59:59.999+14:00', 'P1D', 'PT0S', 'P', 'PT', 'waiting', 'cancel', 'error', 'succeeds', ''),
  fc.record({ name: fc.oneof(fc.string(), fc.jsonValue()), arguments: fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue()) }, { requiredKeys: [] }),
  fc.dictionary(
    fc.constantFrom('days', 'M', 'm', 'ms', 'limit', 'until', 'misfire', 'cron', 'timezone', 'delay', 'jitter', 'backoff', 'dayz', '__proto__', 'constructor'),
    fc.oneof(fc.jsonValue(), fc.integer({ min: -2, max: 3 }), fc.constantFrom('2030-01-01', 'UTC', 'skip', '0 9 * * *', 'PT1M')),
  ),
  fc.double(),
  fc.integer(),
);

const mixedDoc = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string()), nearValue);

const isoDate = fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());

const durationValue = fc.oneof(
  fc.record({ days: fc.integer({ min: 0, max: 400 }) }),
  fc.record({ M: fc.integer({ min: 0, max: 24 }), d: fc.integer({ min: 0, max: 40 }), ms: fc.double({ min: 0, max: 1e6, noNaN: true }) }, { requiredKeys: [] }),
  fc.constantFrom('P1D', 'PT1S', 'P1M7D', 'P1Y', 'PT0.5S', 'PT0,000000001S', 'P0D'),
  fc.double({ min: 0, max: 1e9, noNaN: true }),
);

/** Documents that are valid or a step away from valid, in every field the worker reads. */
const taskLikeDoc = fc.record(
  {
    _id: fc.string({ minLength: 1 }),
    worker: fc.oneof(fc.constantFrom('nightly', 'billing'), fc.string({ maxLength: 210 })),
    date: fc.oneof(isoDate, isoDate.map((d) => d.slice(0, 10)), isoDate.map((d) => d.replace('Z', '+14:00')), fc.string()),
    job: fc.oneof(fc.constant('succeeds'), fc.record({ name: fc.constant('x'), arguments: fc.array(fc.jsonValue()) }, { requiredKeys: ['name'] })),
    status: fc.oneof(fc.constantFrom(...STATUSES), fc.string()),
    repeat: fc.oneof(
      durationValue,
      durationValue.chain((every) =>
        typeof every === 'object'
          ? fc.record({ limit: fc.integer({ min: 0, max: 5 }), until: isoDate, misfire: fc.constantFrom('run_once', 'skip'), timezone: fc.constantFrom('UTC', 'Europe/Paris', 'Mars/Olympus'), jitter: fc.oneof({ arbitrary: fc.constantFrom('5m', 'PT1S', 0, 250), weight: 6 }, { arbitrary: fc.oneof(fc.constantFrom('1M', 'x', -1, true), fc.jsonValue()), weight: 1 }), delay: fc.constantFrom('30s', 5) }, { requiredKeys: [] }).map((o) => ({ ...every, ...o }))
          : fc.constant<unknown>(every),
      ),
      fc.record({ cron: fc.constantFrom('0 9 * * 1-5', '* * * * *', 'not cron', ''), timezone: fc.constantFrom('UTC', 'Asia/Tokyo'), delay: fc.oneof(fc.constantFrom('30s', 'PT2H', '90m', 0, -5, 'soon', null), fc.jsonValue()), jitter: fc.constantFrom('10s', 'PT5M', '2h', 100) }, { requiredKeys: ['cron'] }),
    ),
    retry: fc.record({ limit: fc.integer({ min: -1, max: 5 }), delay: durationValue, backoff: fc.double({ min: 0.5, max: 1e6, noNaN: true }) }, { requiredKeys: [] }),
    timeout: fc.oneof(fc.integer({ min: -1, max: 2 ** 31 }), fc.double()),
    priority: fc.oneof({ arbitrary: fc.integer(), weight: 8 }, { arbitrary: fc.oneof(fc.double(), fc.constantFrom('1', null, 2 ** 60)), weight: 1 }),
    after: fc.oneof(
      { arbitrary: fc.array(fc.constantFrom('import', 'fx-rates', 'a b'), { maxLength: 3 }), weight: 8 },
      { arbitrary: fc.oneof(fc.array(fc.oneof(fc.constantFrom('', '_design/x'), fc.string(), fc.integer()), { maxLength: 4 }), fc.jsonValue()), weight: 1 },
    ),
    after_failure: fc.oneof({ arbitrary: fc.constantFrom('error', 'run'), weight: 8 }, { arbitrary: fc.oneof(fc.constant('ignore'), fc.jsonValue()), weight: 1 }),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['worker', 'date', 'job'] },
);

describe('security: the validate_doc_update function', () => {
  it('is ES5 that both servers compile: no arrow functions, let/const, template strings or modern RegExp flags', () => {
    // acorn comes with pouchdb-server (through express-pouchdb); ecmaVersion 5 refuses any later syntax.
    const acorn = require('acorn') as { parse(source: string, options: { ecmaVersion: number }): unknown };
    expect(() => acorn.parse(`(${VALIDATE_DOC_UPDATE_SOURCE})`, { ecmaVersion: 5 })).to.not.throw();
    // Anonymous: CouchDB 3.4's couchjs refuses a named function with a 500 compilation_error.
    expect(VALIDATE_DOC_UPDATE_SOURCE.startsWith('function (newDoc')).to.equal(true);
    expect(VALIDATE_DOC_UPDATE_SOURCE).to.not.match(/\b(hasOwn|includes|startsWith|endsWith|isInteger|padEnd)\(/);
  });

  for (const c of cases) {
    it(`${c.field ? 'refuses' : 'accepts'} ${c.name}${c.field ? ` (naming ${c.field})` : ''}`, () => {
      const verdict = validateInDb(c.doc);
      if (c.field === undefined) {
        expect(verdict, JSON.stringify(verdict)).to.deep.equal({ ok: true });
      } else {
        expect(verdict.ok).to.equal(false);
        const reason = (verdict as { reason: string }).reason;
        expect(reason.startsWith(`${c.field}: `), reason).to.equal(true);
      }
      // The same source compiled the way pouchdb-server does gives the same verdict.
      expect(validateInDb(c.doc, pouchValidate)).to.deep.equal(verdict);
    });
  }

  it('knows every status the worker knows', () => {
    for (const status of STATUSES) expect(validateInDb({ ...valid, status })).to.deep.equal({ ok: true });
  });

  it('never throws anything but {forbidden} for any JSON value, and every refusal names a field', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return; // servers only pass objects
        const verdict = validateInDb(value);
        if (!verdict.ok) expect(verdict.reason).to.match(FIELD_OF_REASON);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws for documents mixing real fields with arbitrary values; refusals name a field', () => {
    fc.assert(
      fc.property(mixedDoc, (doc) => {
        const verdict = validateInDb(doc);
        if (!verdict.ok) expect(verdict.reason).to.match(FIELD_OF_REASON);
      }),
      { numRuns: 2000 },
    );
  });

  it('never refuses what the worker accepts (its rules are a subset of validateTask)', () => {
    let accepted = 0;
    let refusedByBoth = 0;
    const checkOne = (doc: Record<string, unknown>): void => {
      const worker = validateTask(doc as TaskDoc);
      const verdict = validateInDb(doc);
      if (worker.ok) {
        accepted++;
        expect(verdict, `validateTask accepts ${JSON.stringify(doc)}`).to.deep.equal({ ok: true });
      } else if (!verdict.ok) {
        refusedByBoth++;
      }
    };
    fc.assert(fc.property(taskLikeDoc, checkOne), { numRuns: 6000 });
    fc.assert(fc.property(mixedDoc, checkOne), { numRuns: 2000 });
    // Not vacuous: both sides of the property were reached many times.
    expect(accepted, `${accepted} accepted`).to.be.above(200);
    expect(refusedByBoth, `${refusedByBoth} refused by both`).to.be.above(200);
  });

  it("passes every write the worker makes: claims, finishes, and error/canceled on invalid tasks", () => {
    const outcome: fc.Arbitrary<RunOutcome> = fc.oneof(
      fc.record({ kind: fc.constant('success' as const), result: fc.jsonValue() }),
      fc.record({ kind: fc.constant('failure' as const), error: fc.record({ message: fc.string(), code: fc.string() }) }),
      fc.constant({ kind: 'canceled' as const }),
    );
    fc.assert(
      fc.property(fc.oneof(taskLikeDoc, mixedDoc), outcome, fc.integer({ min: 0, max: 400 * 86_400_000 }), (doc, result, durationMs) => {
        const task = doc as TaskDoc;
        const checked = validateTask(task);
        if (!checked.ok) {
          // Written before init, or on a database without the design document: the worker's verdict passes.
          expect(validateInDb(invalidState(task, checked.field, checked.message))).to.deep.equal({ ok: true });
          expect(validateInDb(canceledState(task))).to.deep.equal({ ok: true });
          return;
        }
        const lease = { instance: 'host:1:abc', expires_at: '2030-01-01T00:00:00.000Z' };
        for (const status of ['scheduled', 'running', 'waiting'] as const) {
          expect(validateInDb({ ...task, status, lease })).to.deep.equal({ ok: true });
        }
        const startedAtMs = checked.task.dateMs;
        // The clock is before year 10000: a run that ended later would date its retry there.
        const finishedAtMs = Math.min(startedAtMs + durationMs, MAX_DATE_MS);
        const run = { startedAtMs, finishedAtMs, worker: 'nightly', instance: lease.instance };
        const next = nextState(task, checked.task, result, run, { historyLimit: 5 });
        expect(validateInDb(next), JSON.stringify(next)).to.deep.equal({ ok: true });
      }),
      // No shrinking: a counterexample here is large, and shrinking it took minutes.
      { numRuns: 2000, endOnFailure: true },
    );
  });

  it('answers a 2 MB document and a deeply nested payload without walking them', () => {
    const big = { ...valid, data: 'x'.repeat(2 * 1024 * 1024) };
    expect(validateInDb(big)).to.deep.equal({ ok: true });
    let deep: unknown = 'bottom';
    for (let i = 0; i < 1000; i++) deep = [deep];
    // The function never looks inside `data`, however deep it goes.
    expect(validateInDb({ ...valid, data: deep })).to.deep.equal({ ok: true });
    const refused = validateInDb({ ...valid, worker: 'w'.repeat(3 * 1024 * 1024) });
    expect(refused.ok).to.equal(false);
    expect((refused as { reason: string }).reason.length).to.be.below(300);
  });
});

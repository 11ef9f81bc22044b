import { expect } from 'chai';
import { Duration, zeroDuration } from '../../src/task/duration';
import { IntervalRepeat, parseRepeat, Repeat } from '../../src/task/repeat';
import { parseRetry, retryDelayMs, Retry } from '../../src/task/retry';
import { nextRepeat } from '../../src/task/series';

const utc = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();
const of = (units: Partial<Duration>): Duration => ({ ...zeroDuration(), ...units });
const every = (units: Partial<Duration>, options: Partial<IntervalRepeat> = {}): Repeat => ({
  kind: 'interval',
  every: of(units),
  misfire: 'run_once',
  ...options,
});

/** Follow a series run by run, each run finishing `lateMs` after its date; returns the dates. */
function runSeries(repeat: Repeat, firstDate: string, runs: number, lateMs = 1000): string[] {
  const anchorMs = utc(firstDate);
  let dateMs = anchorMs;
  const dates = [iso(dateMs)];
  for (let repetitions = 1; repetitions <= runs; repetitions++) {
    const next = nextRepeat(repeat, { anchorMs, dateMs, repetitions, nowMs: dateMs + lateMs });
    if (!next) break;
    dateMs = next.dateMs;
    dates.push(iso(dateMs));
  }
  return dates;
}

describe('task repeat', () => {
  describe('parseRepeat accepts', () => {
    const cases: { name: string; value: unknown; expected: Repeat }[] = [
      { name: 'a duration object', value: { days: 7, months: 1 }, expected: every({ months: 1, days: 7 }) },
      { name: 'an ISO 8601 duration', value: 'P1M7D', expected: every({ months: 1, days: 7 }) },
      { name: 'shorthand keys', value: { M: 1, m: 30 }, expected: every({ months: 1, minutes: 30 }) },
      { name: 'limit', value: { days: 1, limit: 3 }, expected: every({ days: 1 }, { limit: 3 }) },
      { name: 'until', value: { days: 1, until: '2014-01-01' }, expected: every({ days: 1 }, { untilMs: utc('2014-01-01') }) },
      { name: 'misfire skip', value: { hours: 1, misfire: 'skip' }, expected: every({ hours: 1 }, { misfire: 'skip' }) },
      { name: 'misfire run_once', value: { hours: 1, misfire: 'run_once' }, expected: every({ hours: 1 }) },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(parseRepeat(c.value)).to.deep.equal({ ok: true, repeat: c.expected });
      });
    }
  });

  describe('parseRepeat rejects, naming the field', () => {
    const cases: { name: string; value: unknown; field: RegExp }[] = [
      { name: 'an invalid cron expression (more in task-cron.test)', value: { cron: '61 * * * *', timezone: 'Europe/Paris' }, field: /^repeat\.cron: / },
      { name: 'an unknown time zone on a duration (more in task-zones.test)', value: { days: 1, timezone: 'Mars/Olympus' }, field: /^repeat\.timezone: unknown time zone/ },
      { name: 'an array', value: [1, 'day'], field: /^repeat: / },
      { name: 'null', value: null, field: /^repeat: / },
      { name: 'a number', value: 60000, field: /^repeat: / },
      { name: 'a boolean', value: true, field: /^repeat: / },
      { name: 'an empty object', value: {}, field: /^repeat: .*zero length/ },
      { name: 'only a limit', value: { limit: 3 }, field: /^repeat: .*zero length/ },
      { name: 'zero length', value: { seconds: 0 }, field: /^repeat: .*zero length/ },
      { name: 'an unknown key', value: { dayz: 1 }, field: /^repeat: unknown duration key "dayz"/ },
      { name: 'a bad ISO string', value: 'every day', field: /^repeat: / },
      { name: 'limit 0', value: { days: 1, limit: 0 }, field: /^repeat\.limit: / },
      { name: 'a fractional limit', value: { days: 1, limit: 1.5 }, field: /^repeat\.limit: / },
      { name: 'a string limit', value: { days: 1, limit: '3' }, field: /^repeat\.limit: / },
      { name: 'a bad until', value: { days: 1, until: '2014-02-30' }, field: /^repeat\.until: / },
      { name: 'a numeric until', value: { days: 1, until: 1388534400000 }, field: /^repeat\.until: / },
      { name: 'an unknown misfire', value: { days: 1, misfire: 'all' }, field: /^repeat\.misfire: / },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const parsed = parseRepeat(c.value);
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.message).to.match(c.field);
      });
    }
  });

  describe('series dates do not drift', () => {
    const cases: { name: string; repeat: Repeat; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'monthly from Jan 31: Feb 28, Mar 31, Apr 30',
        repeat: every({ months: 1 }),
        first: '2013-01-31T10:00:00Z',
        runs: 3,
        expected: ['2013-01-31T10:00:00.000Z', '2013-02-28T10:00:00.000Z', '2013-03-31T10:00:00.000Z', '2013-04-30T10:00:00.000Z'],
      },
      {
        name: 'monthly from Jan 31 in a leap year: Feb 29',
        repeat: every({ months: 1 }),
        first: '2012-01-31',
        runs: 2,
        expected: ['2012-01-31T00:00:00.000Z', '2012-02-29T00:00:00.000Z', '2012-03-31T00:00:00.000Z'],
      },
      {
        name: 'yearly from Feb 29: Feb 28, then Feb 29 four years on',
        repeat: every({ years: 1 }),
        first: '2012-02-29',
        runs: 4,
        expected: [
          '2012-02-29T00:00:00.000Z',
          '2013-02-28T00:00:00.000Z',
          '2014-02-28T00:00:00.000Z',
          '2015-02-28T00:00:00.000Z',
          '2016-02-29T00:00:00.000Z',
        ],
      },
      {
        name: '{"days": 7, "months": 1} from Jan 31',
        repeat: every({ months: 1, days: 7 }),
        first: '2013-01-31',
        runs: 2,
        expected: ['2013-01-31T00:00:00.000Z', '2013-03-07T00:00:00.000Z', '2013-04-14T00:00:00.000Z'],
      },
      {
        name: 'limit 3 runs three times in all',
        repeat: every({ days: 1 }, { limit: 3 }),
        first: '2013-01-12',
        runs: 10,
        expected: ['2013-01-12T00:00:00.000Z', '2013-01-13T00:00:00.000Z', '2013-01-14T00:00:00.000Z'],
      },
      {
        name: 'limit 1 runs once',
        repeat: every({ days: 1 }, { limit: 1 }),
        first: '2013-01-12',
        runs: 10,
        expected: ['2013-01-12T00:00:00.000Z'],
      },
      {
        name: 'until: no run after it',
        repeat: every({ days: 1 }, { untilMs: utc('2013-01-14T12:00:00Z') }),
        first: '2013-01-12',
        runs: 10,
        expected: ['2013-01-12T00:00:00.000Z', '2013-01-13T00:00:00.000Z', '2013-01-14T00:00:00.000Z'],
      },
      {
        name: 'until equal to a series date includes it',
        repeat: every({ days: 1 }, { untilMs: utc('2013-01-13') }),
        first: '2013-01-12',
        runs: 10,
        expected: ['2013-01-12T00:00:00.000Z', '2013-01-13T00:00:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(runSeries(c.repeat, c.first, c.runs)).to.deep.equal(c.expected);
      });
    }

    it('a late run does not push the next date back', () => {
      const anchorMs = utc('2013-01-12T10:00:00Z');
      const next = nextRepeat(every({ hours: 1 }), { anchorMs, dateMs: anchorMs, repetitions: 1, nowMs: anchorMs + 40 * 60_000 });
      expect(next && iso(next.dateMs)).to.equal('2013-01-12T11:00:00.000Z');
    });

    it('continues from the anchor after a retry moved the date', () => {
      const anchorMs = utc('2013-01-12T10:00:00Z');
      const retriedAt = utc('2013-01-12T10:07:00Z');
      const next = nextRepeat(every({ hours: 1 }), { anchorMs, dateMs: retriedAt, repetitions: 1, nowMs: retriedAt + 1000 });
      expect(next && iso(next.dateMs)).to.equal('2013-01-12T11:00:00.000Z');
    });
  });

  describe('missed dates after an outage', () => {
    const anchorMs = utc('2010-03-01T00:00:00Z');
    const nowMs = utc('2013-01-12T10:00:00.500Z');
    const cases: { name: string; repeat: Repeat; expected: string | null }[] = [
      { name: 'run_once runs the latest missed date, once', repeat: every({ seconds: 1 }), expected: '2013-01-12T10:00:00.000Z' },
      { name: 'skip waits for the first future date', repeat: every({ seconds: 1 }, { misfire: 'skip' }), expected: '2013-01-12T10:00:01.000Z' },
      { name: 'run_once with a 1 ms interval', repeat: every({ milliseconds: 1 }), expected: '2013-01-12T10:00:00.500Z' },
      { name: 'skip with a 1 ms interval', repeat: every({ milliseconds: 1 }, { misfire: 'skip' }), expected: '2013-01-12T10:00:00.501Z' },
      { name: 'run_once monthly', repeat: every({ months: 1 }), expected: '2013-01-01T00:00:00.000Z' },
      { name: 'skip monthly', repeat: every({ months: 1 }, { misfire: 'skip' }), expected: '2013-02-01T00:00:00.000Z' },
      {
        name: 'run_once with until during the outage runs the last date before until',
        repeat: every({ seconds: 1 }, { untilMs: utc('2011-06-01T12:00:00.200Z') }),
        expected: '2011-06-01T12:00:00.000Z',
      },
      {
        name: 'skip with until during the outage ends the series',
        repeat: every({ seconds: 1 }, { misfire: 'skip', untilMs: utc('2011-06-01T12:00:00.200Z') }),
        expected: null,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const started = process.hrtime.bigint();
        const next = nextRepeat(c.repeat, { anchorMs, dateMs: anchorMs, repetitions: 1, nowMs });
        const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
        expect(next && iso(next.dateMs)).to.equal(c.expected);
        expect(elapsedMs).to.be.below(50);
      });
    }

    it('after the run_once catch-up, the series continues at the next future date', () => {
      const repeat = every({ seconds: 1 });
      const caughtUp = nextRepeat(repeat, { anchorMs, dateMs: anchorMs, repetitions: 1, nowMs });
      expect(caughtUp).to.not.equal(null);
      const after = nextRepeat(repeat, { anchorMs, dateMs: caughtUp!.dateMs, repetitions: 2, nowMs: nowMs + 100 });
      expect(after && iso(after.dateMs)).to.equal('2013-01-12T10:00:01.000Z');
    });

    it('a series whose next date passes year 9999 ends', () => {
      const start = utc('9999-06-01');
      expect(nextRepeat(every({ years: 1 }), { anchorMs: start, dateMs: start, repetitions: 1, nowMs: start })).to.equal(null);
    });
  });

  describe('parseRetry', () => {
    const accepted: { name: string; value: unknown; expected: Retry }[] = [
      { name: 'limit alone: 1 s delay, no backoff', value: { limit: 3 }, expected: { limit: 3, delay: of({ milliseconds: 1000 }), backoff: 1 } },
      { name: 'limit 0', value: { limit: 0 }, expected: { limit: 0, delay: of({ milliseconds: 1000 }), backoff: 1 } },
      { name: 'ISO delay and backoff', value: { limit: 3, delay: 'PT1M', backoff: 2 }, expected: { limit: 3, delay: of({ minutes: 1 }), backoff: 2 } },
      { name: 'object delay', value: { limit: 1, delay: { s: 30 } }, expected: { limit: 1, delay: of({ seconds: 30 }), backoff: 1 } },
      { name: 'zero delay', value: { limit: 1, delay: 0 }, expected: { limit: 1, delay: zeroDuration(), backoff: 1 } },
    ];
    for (const c of accepted) {
      it(`accepts ${c.name}`, () => {
        expect(parseRetry(c.value)).to.deep.equal({ ok: true, retry: c.expected });
      });
    }
    const rejected: { name: string; value: unknown; field: RegExp }[] = [
      { name: 'a number', value: 3, field: /^retry: / },
      { name: 'null', value: null, field: /^retry: / },
      { name: 'an array', value: [3], field: /^retry: / },
      { name: 'no limit', value: { delay: 1000 }, field: /^retry\.limit: / },
      { name: 'a negative limit', value: { limit: -1 }, field: /^retry\.limit: / },
      { name: 'a fractional limit', value: { limit: 1.5 }, field: /^retry\.limit: / },
      { name: 'a bad delay', value: { limit: 1, delay: 'soon' }, field: /^retry\.delay: / },
      { name: 'a negative delay', value: { limit: 1, delay: -1 }, field: /^retry\.delay: / },
      { name: 'backoff below 1', value: { limit: 1, backoff: 0.5 }, field: /^retry\.backoff: / },
      { name: 'a string backoff', value: { limit: 1, backoff: '2' }, field: /^retry\.backoff: / },
      { name: 'a misspelt key', value: { limit: 1, dealy: 1000 }, field: /^retry: unknown key "dealy"/ },
    ];
    for (const c of rejected) {
      it(`rejects ${c.name}`, () => {
        const parsed = parseRetry(c.value);
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.message).to.match(c.field);
      });
    }
  });

  describe('retryDelayMs = delay × backoff^n', () => {
    const fromMs = utc('2013-01-12T10:00:00Z');
    const retry: Retry = { limit: 5, delay: of({ seconds: 10 }), backoff: 2 };
    const cases: { name: string; retry: Retry; failuresSoFar: number; from?: number; expected: number }[] = [
      { name: 'first retry: delay', retry, failuresSoFar: 0, expected: 10_000 },
      { name: 'second retry: delay × 2', retry, failuresSoFar: 1, expected: 20_000 },
      { name: 'fourth retry: delay × 8', retry, failuresSoFar: 3, expected: 80_000 },
      { name: 'backoff 1 keeps the delay', retry: { ...retry, backoff: 1 }, failuresSoFar: 4, expected: 10_000 },
      { name: 'fractional backoff', retry: { ...retry, backoff: 1.5 }, failuresSoFar: 2, expected: 22_500 },
      { name: 'a month from Feb 1', retry: { ...retry, delay: of({ months: 1 }), backoff: 1 }, failuresSoFar: 0, from: utc('2013-02-01'), expected: 28 * 86_400_000 },
      { name: 'capped at year 9999', retry: { ...retry, backoff: 1e10 }, failuresSoFar: 1000, expected: Date.UTC(9999, 11, 31, 23, 59, 59, 999) - fromMs },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(retryDelayMs(c.retry, c.failuresSoFar, c.from ?? fromMs)).to.equal(c.expected);
      });
    }
  });
});

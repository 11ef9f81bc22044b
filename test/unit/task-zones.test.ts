/**
 * Calendar repeats in a time zone, the DST rules they follow, and the duration forms
 * (ISO 8601, compact) — all with the clock passed in, as tables. The 2026 transitions used:
 * - Europe/Paris:     Mar 29 02:00 → 03:00 (01:00Z); Oct 25 03:00 → 02:00 (01:00Z)
 * - America/New_York: Mar 8 02:00 → 03:00 (07:00Z);  Nov 1 02:00 → 01:00 (06:00Z)
 * - Australia/Sydney: Apr 5 03:00 → 02:00 (Apr 4 16:00Z); Oct 4 02:00 → 03:00 (Oct 3 16:00Z)
 * - Asia/Kolkata:     none (+05:30 all year)
 */
import { expect } from 'chai';
import { parseCompactDuration, parseDuration, zeroDuration, type Duration } from '../../src/task/duration';
import { parseRepeat } from '../../src/task/repeat';
import { nextRepeat } from '../../src/task/series';
import { formatInZone, instantOf, parseTimeZone, zoneOffsetMs, type WallClock } from '../../src/task/zones';

const utc = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();
const wall = (text: string): WallClock => {
  const [date, time] = text.split(' ');
  const [year, month, day] = date!.split('-').map(Number);
  const [hour, minute, second] = time!.split(':').map(Number);
  return { year: year!, month: month!, day: day!, hour: hour!, minute: minute!, second: second ?? 0, millisecond: 0 };
};

/** Follow a series run by run, each run on time and finishing a second later. */
function runSeries(spec: unknown, first: string, runs: number): string[] {
  const parsed = parseRepeat(spec);
  if (!parsed.ok) throw new Error(parsed.message);
  const anchorMs = utc(first);
  let dateMs = anchorMs;
  const dates = [iso(dateMs)];
  for (let repetitions = 1; repetitions <= runs; repetitions++) {
    const next = nextRepeat(parsed.repeat, { anchorMs, dateMs, startedAtMs: dateMs, repetitions, nowMs: dateMs + 1000 });
    if (!next) break;
    dateMs = next.dateMs;
    dates.push(iso(dateMs));
  }
  return dates;
}

describe('time zones', () => {
  describe('parseTimeZone', () => {
    for (const zone of ['Europe/Paris', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'UTC', 'Etc/GMT+5']) {
      it(`accepts ${zone}`, () => expect(parseTimeZone(zone, 'repeat.timezone')).to.deep.equal({ ok: true, zone }));
    }
    it('rejects an unknown zone, naming the field and the zone', () => {
      expect(parseTimeZone('Mars/Olympus', 'repeat.timezone')).to.deep.equal({
        ok: false,
        message: 'repeat.timezone: unknown time zone "Mars/Olympus"',
      });
    });
    for (const value of ['', 5, null, { zone: 'UTC' }, 'x'.repeat(100)]) {
      it(`rejects ${JSON.stringify(value).slice(0, 20)}`, () => {
        const parsed = parseTimeZone(value, 'repeat.timezone');
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.message).to.match(/^repeat\.timezone: /);
      });
    }
  });

  describe('a local time resolves by the DST rules', () => {
    const cases: { name: string; zone: string; local: string; expected: string }[] = [
      { name: 'an ordinary time', zone: 'Europe/Paris', local: '2026-03-28 02:30', expected: '2026-03-28T01:30:00.000Z' },
      { name: 'Paris spring gap: 02:30 → 03:00 CEST', zone: 'Europe/Paris', local: '2026-03-29 02:30', expected: '2026-03-29T01:00:00.000Z' },
      { name: 'Paris spring gap: 02:00 → 03:00 CEST', zone: 'Europe/Paris', local: '2026-03-29 02:00', expected: '2026-03-29T01:00:00.000Z' },
      { name: 'Paris fall back: 02:30 twice → the first (CEST)', zone: 'Europe/Paris', local: '2026-10-25 02:30', expected: '2026-10-25T00:30:00.000Z' },
      { name: 'New York spring gap: 02:30 → 03:00 EDT', zone: 'America/New_York', local: '2026-03-08 02:30', expected: '2026-03-08T07:00:00.000Z' },
      { name: 'New York fall back: 01:30 twice → the first (EDT)', zone: 'America/New_York', local: '2026-11-01 01:30', expected: '2026-11-01T05:30:00.000Z' },
      { name: 'Sydney spring gap: 02:30 → 03:00 AEDT', zone: 'Australia/Sydney', local: '2026-10-04 02:30', expected: '2026-10-03T16:00:00.000Z' },
      { name: 'Sydney fall back: 02:30 twice → the first (AEDT)', zone: 'Australia/Sydney', local: '2026-04-05 02:30', expected: '2026-04-04T15:30:00.000Z' },
      { name: 'Kolkata, no DST', zone: 'Asia/Kolkata', local: '2026-03-29 02:30', expected: '2026-03-28T21:00:00.000Z' },
    ];
    for (const c of cases) {
      it(c.name, () => expect(iso(instantOf(c.zone, wall(c.local))))
        .to.equal(c.expected));
    }
  });

  describe('offsets and display', () => {
    it('reads the offset in force at an instant', () => {
      expect(zoneOffsetMs('Europe/Paris', utc('2026-03-29T00:59:59Z'))).to.equal(3_600_000);
      expect(zoneOffsetMs('Europe/Paris', utc('2026-03-29T01:00:00Z'))).to.equal(7_200_000);
      expect(zoneOffsetMs('America/New_York', utc('2026-11-01T06:00:00Z'))).to.equal(-5 * 3_600_000);
      expect(zoneOffsetMs('Asia/Kolkata', utc('2026-06-01T00:00:00Z'))).to.equal(5.5 * 3_600_000);
    });
    it('shows an instant on a clock in the zone, with weekday and offset', () => {
      expect(formatInZone('Europe/Paris', utc('2026-03-29T01:00:00Z'))).to.equal('Sun 2026-03-29 03:00:00 +02:00');
      expect(formatInZone('America/New_York', utc('2026-11-01T06:30:00Z'))).to.equal('Sun 2026-11-01 01:30:00 -05:00');
      expect(formatInZone('Asia/Kolkata', utc('2026-01-01T00:00:00Z'))).to.equal('Thu 2026-01-01 05:30:00 +05:30');
    });
  });

  describe('calendar repeats keep the local time across DST', () => {
    const cases: { name: string; spec: unknown; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'New York daily 09:00 across spring forward (EST → EDT)',
        spec: { days: 1, timezone: 'America/New_York' },
        first: '2026-03-07T14:00:00Z',
        runs: 2,
        expected: ['2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z'],
      },
      {
        name: 'New York daily 09:00 across fall back (EDT → EST)',
        spec: { d: 1, timezone: 'America/New_York' },
        first: '2026-10-31T13:00:00Z',
        runs: 2,
        expected: ['2026-10-31T13:00:00.000Z', '2026-11-01T14:00:00.000Z', '2026-11-02T14:00:00.000Z'],
      },
      {
        name: 'New York daily 02:30: the day it does not exist, 03:00 EDT',
        spec: { days: 1, timezone: 'America/New_York' },
        first: '2026-03-07T07:30:00Z',
        runs: 2,
        expected: ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
      },
      {
        name: 'New York daily 01:30: the day it happens twice, once, at the first',
        spec: { days: 1, timezone: 'America/New_York' },
        first: '2026-10-31T05:30:00Z',
        runs: 2,
        expected: ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'],
      },
      {
        name: 'Paris daily 02:30 across both transitions',
        spec: { days: 1, timezone: 'Europe/Paris' },
        first: '2026-03-28T01:30:00Z',
        runs: 2,
        expected: ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
      },
      {
        name: 'Paris weekly 02:30 on Sundays, into the fall-back night',
        spec: { weeks: 1, timezone: 'Europe/Paris' },
        first: '2026-10-18T00:30:00Z',
        runs: 2,
        expected: ['2026-10-18T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-11-01T01:30:00.000Z'],
      },
      {
        name: 'Sydney daily 02:30 across its spring forward (October)',
        spec: { days: 1, timezone: 'Australia/Sydney' },
        first: '2026-10-02T16:30:00Z',
        runs: 2,
        expected: ['2026-10-02T16:30:00.000Z', '2026-10-03T16:00:00.000Z', '2026-10-04T15:30:00.000Z'],
      },
      {
        name: 'Sydney daily 02:30 across its fall back (April): once',
        spec: { days: 1, timezone: 'Australia/Sydney' },
        first: '2026-04-03T15:30:00Z',
        runs: 2,
        expected: ['2026-04-03T15:30:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-05T16:30:00.000Z'],
      },
      {
        name: 'without a zone, days are UTC days: 09:00 New York becomes 10:00 after fall back',
        spec: { days: 1 },
        first: '2026-10-31T13:00:00Z',
        runs: 2,
        expected: ['2026-10-31T13:00:00.000Z', '2026-11-01T13:00:00.000Z', '2026-11-02T13:00:00.000Z'],
      },
      {
        name: 'hours are elapsed time even with a zone (no local 02:xx on the gap night)',
        spec: { hours: 1, timezone: 'America/New_York' },
        first: '2026-03-08T05:30:00Z',
        runs: 3,
        expected: ['2026-03-08T05:30:00.000Z', '2026-03-08T06:30:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-08T08:30:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.spec, c.first, c.runs)).to.deep.equal(c.expected));
    }
  });

  describe('month ends and leap days in a zone do not drift', () => {
    const cases: { name: string; spec: unknown; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'Paris monthly from Jan 31 00:30 local: Feb 28, Mar 31 (after DST), Apr 30, May 31',
        spec: { months: 1, timezone: 'Europe/Paris' },
        first: '2026-01-30T23:30:00Z',
        runs: 4,
        expected: ['2026-01-30T23:30:00.000Z', '2026-02-27T23:30:00.000Z', '2026-03-30T22:30:00.000Z', '2026-04-29T22:30:00.000Z', '2026-05-30T22:30:00.000Z'],
      },
      {
        name: 'New York monthly from Jan 31 23:00 local (Feb 1 in UTC): stays on the local month end',
        spec: { months: 1, timezone: 'America/New_York' },
        first: '2026-02-01T04:00:00Z',
        runs: 3,
        expected: ['2026-02-01T04:00:00.000Z', '2026-03-01T04:00:00.000Z', '2026-04-01T03:00:00.000Z', '2026-05-01T03:00:00.000Z'],
      },
      {
        name: 'Sydney monthly from Jan 31 in a leap year: Feb 29',
        spec: { M: 1, timezone: 'Australia/Sydney' },
        first: '2028-01-30T22:00:00Z',
        runs: 2,
        expected: ['2028-01-30T22:00:00.000Z', '2028-02-28T22:00:00.000Z', '2028-03-30T22:00:00.000Z'],
      },
      {
        name: 'Kolkata yearly from Feb 29 09:00: Feb 28, then Feb 29 four years on',
        spec: { years: 1, timezone: 'Asia/Kolkata' },
        first: '2028-02-29T03:30:00Z',
        runs: 4,
        expected: ['2028-02-29T03:30:00.000Z', '2029-02-28T03:30:00.000Z', '2030-02-28T03:30:00.000Z', '2031-02-28T03:30:00.000Z', '2032-02-29T03:30:00.000Z'],
      },
      {
        name: '{"months": 1, "days": 7} in Paris: months first, then days',
        spec: { months: 1, days: 7, timezone: 'Europe/Paris' },
        first: '2026-01-31T08:00:00Z',
        runs: 2,
        expected: ['2026-01-31T08:00:00.000Z', '2026-03-07T08:00:00.000Z', '2026-04-14T07:00:00.000Z'],
      },
      {
        name: 'limit 2 in a zone',
        spec: { days: 1, timezone: 'Europe/Paris', limit: 2 },
        first: '2026-03-28T08:00:00Z',
        runs: 10,
        expected: ['2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z'],
      },
      {
        name: 'until in a zone',
        spec: { days: 1, timezone: 'Europe/Paris', until: '2026-03-30T07:00:00Z' },
        first: '2026-03-28T08:00:00Z',
        runs: 10,
        expected: ['2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.spec, c.first, c.runs)).to.deep.equal(c.expected));
    }
  });

  describe('misfire after an outage, in a zone', () => {
    // A daily 09:00 New York series; the worker was down from Mar 1 to Mar 10 12:00 local.
    const parsed = parseRepeat({ days: 1, timezone: 'America/New_York' });
    const skipParsed = parseRepeat({ days: 1, timezone: 'America/New_York', misfire: 'skip' });
    if (!parsed.ok || !skipParsed.ok) throw new Error('fixture repeat is invalid');
    const anchorMs = utc('2026-01-01T14:00:00Z');
    const dateMs = utc('2026-03-01T14:00:00Z');
    const backAtMs = utc('2026-03-10T16:00:00Z');

    it('the overdue run, started late, stands for the missed dates: next is the next future date', () => {
      const next = nextRepeat(parsed.repeat, { anchorMs, dateMs, startedAtMs: backAtMs, repetitions: 60, nowMs: backAtMs + 2000 });
      expect(next && iso(next.dateMs)).to.equal('2026-03-11T13:00:00.000Z');
    });
    it('a run that started on time but outlasted dates runs once more, at once, for the latest (run_once)', () => {
      const next = nextRepeat(parsed.repeat, { anchorMs, dateMs, startedAtMs: dateMs, repetitions: 60, nowMs: backAtMs });
      expect(next && iso(next.dateMs)).to.equal('2026-03-10T13:00:00.000Z');
    });
    it('skip waits for the next future date instead', () => {
      const next = nextRepeat(skipParsed.repeat, { anchorMs, dateMs, startedAtMs: dateMs, repetitions: 60, nowMs: backAtMs });
      expect(next && iso(next.dateMs)).to.equal('2026-03-11T13:00:00.000Z');
    });
    it('in UTC too: an every-second series down for a day runs once, then on the next second', () => {
      const every = parseRepeat({ s: 1 });
      if (!every.ok) throw new Error(every.message);
      const first = utc('2026-05-01T00:00:00Z');
      const back = utc('2026-05-02T00:00:00.250Z');
      const next = nextRepeat(every.repeat, { anchorMs: first, dateMs: first, startedAtMs: back, repetitions: 1, nowMs: back + 300 });
      expect(next && iso(next.dateMs)).to.equal('2026-05-02T00:00:01.000Z');
    });
    it('a daily zone series anchored years ago is computed without a walk per date', () => {
      const started = process.hrtime.bigint();
      const next = nextRepeat(parsed.repeat, { anchorMs: utc('2000-01-01T14:00:00Z'), dateMs: utc('2000-01-01T14:00:00Z'), repetitions: 1, nowMs: backAtMs });
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(next && iso(next.dateMs)).to.equal('2026-03-10T13:00:00.000Z');
      expect(elapsedMs).to.be.below(50);
    });
  });

  describe('ISO 8601 durations', () => {
    const of = (units: Partial<Duration>): Duration => ({ ...zeroDuration(), ...units });
    const cases: { text: string; expected: Duration }[] = [
      { text: 'P1D', expected: of({ days: 1 }) },
      { text: 'P1M7D', expected: of({ months: 1, days: 7 }) },
      { text: 'P1Y2M3W4DT5H6M7S', expected: of({ years: 1, months: 2, weeks: 3, days: 4, hours: 5, minutes: 6, seconds: 7 }) },
      { text: 'PT36H', expected: of({ hours: 36 }) },
      { text: 'PT0.5S', expected: of({ seconds: 0.5 }) },
      { text: 'PT1,5M', expected: of({ minutes: 1.5 }) },
    ];
    for (const c of cases) {
      it(`reads ${c.text}`, () => expect(parseDuration(c.text, 'repeat')).to.deep.equal({ ok: true, duration: c.expected }));
    }
    for (const text of ['P', 'PT', '1D', 'P1H', 'PT1D', 'P-1D', 'P1.5D', 'PT0S', 'p1d']) {
      it(`rejects ${text}`, () => expect(parseDuration(text, 'repeat').ok).to.equal(false));
    }
    it('"P1M" as a repeat from Jan 31 runs on month ends', () => {
      expect(runSeries('P1M', '2026-01-31T09:00:00Z', 2)).to.deep.equal(['2026-01-31T09:00:00.000Z', '2026-02-28T09:00:00.000Z', '2026-03-31T09:00:00.000Z']);
    });
    it('"PT36H" is 36 elapsed hours', () => {
      expect(runSeries('PT36H', '2026-03-07T12:00:00Z', 2)).to.deep.equal(['2026-03-07T12:00:00.000Z', '2026-03-09T00:00:00.000Z', '2026-03-10T12:00:00.000Z']);
    });
  });

  describe('the compact duration form (--every)', () => {
    const of = (units: Partial<Duration>): Duration => ({ ...zeroDuration(), ...units });
    const cases: { text: string; expected: Duration }[] = [
      { text: '1M7d', expected: of({ months: 1, days: 7 }) },
      { text: '1h30m', expected: of({ hours: 1, minutes: 30 }) },
      { text: '30m1h', expected: of({ hours: 1, minutes: 30 }) },
      { text: '90s', expected: of({ seconds: 90 }) },
      { text: '500ms', expected: of({ milliseconds: 500 }) },
      { text: '1y', expected: of({ years: 1 }) },
      { text: '2w', expected: of({ weeks: 2 }) },
      { text: '1.5h', expected: of({ hours: 1.5 }) },
      { text: ' 1M 7d ', expected: of({ months: 1, days: 7 }) },
    ];
    for (const c of cases) {
      it(`reads ${JSON.stringify(c.text)}`, () => expect(parseCompactDuration(c.text, '--every')).to.deep.equal({ ok: true, duration: c.expected }));
    }
    const rejected: { text: string; why: RegExp }[] = [
      { text: '', why: /^--every: / },
      { text: '1', why: /^--every: .*not a duration/ },
      { text: 'd', why: /^--every: .*not a duration/ },
      { text: '1x', why: /^--every: .*not a duration/ },
      { text: '1D', why: /^--every: .*not a duration/ },
      { text: '-1d', why: /^--every: .*not a duration/ },
      { text: '1.5d', why: /^--every\.d: .*whole number/ },
      { text: '1m1m', why: /^--every: .*twice/ },
      { text: '0s', why: /^--every: .*zero length/ },
      { text: '1001y', why: /^--every: .*longer than/ },
      { text: 'P1D', why: /^--every: .*not a duration/ },
    ];
    for (const c of rejected) {
      it(`rejects ${JSON.stringify(c.text)}`, () => {
        const parsed = parseCompactDuration(c.text, '--every');
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.message).to.match(c.why);
      });
    }
  });
});

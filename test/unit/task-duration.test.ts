import { expect } from 'chai';
import { addDuration, Duration, durationToMs, parseDuration, zeroDuration } from '../../src/task/duration';

const utc = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();
const of = (units: Partial<Duration>): Duration => ({ ...zeroDuration(), ...units });

describe('task durations', () => {
  describe('parseDuration accepts every moment.js spelling', () => {
    const cases: { name: string; value: unknown; expected: Partial<Duration> }[] = [
      { name: 'years', value: { years: 2 }, expected: { years: 2 } },
      { name: 'year', value: { year: 2 }, expected: { years: 2 } },
      { name: 'y', value: { y: 2 }, expected: { years: 2 } },
      { name: 'months', value: { months: 3 }, expected: { months: 3 } },
      { name: 'month', value: { month: 3 }, expected: { months: 3 } },
      { name: 'M is months', value: { M: 3 }, expected: { months: 3 } },
      { name: 'weeks', value: { weeks: 1 }, expected: { weeks: 1 } },
      { name: 'week', value: { week: 1 }, expected: { weeks: 1 } },
      { name: 'w', value: { w: 1 }, expected: { weeks: 1 } },
      { name: 'days', value: { days: 4 }, expected: { days: 4 } },
      { name: 'day', value: { day: 4 }, expected: { days: 4 } },
      { name: 'd', value: { d: 4 }, expected: { days: 4 } },
      { name: 'hours', value: { hours: 5 }, expected: { hours: 5 } },
      { name: 'hour', value: { hour: 5 }, expected: { hours: 5 } },
      { name: 'h', value: { h: 1.5 }, expected: { hours: 1.5 } },
      { name: 'minutes', value: { minutes: 6 }, expected: { minutes: 6 } },
      { name: 'minute', value: { minute: 6 }, expected: { minutes: 6 } },
      { name: 'm is minutes', value: { m: 6 }, expected: { minutes: 6 } },
      { name: 'seconds', value: { seconds: 7 }, expected: { seconds: 7 } },
      { name: 'second', value: { second: 7 }, expected: { seconds: 7 } },
      { name: 's', value: { s: 0.25 }, expected: { seconds: 0.25 } },
      { name: 'milliseconds', value: { milliseconds: 8 }, expected: { milliseconds: 8 } },
      { name: 'millisecond', value: { millisecond: 8 }, expected: { milliseconds: 8 } },
      { name: 'ms', value: { ms: 8 }, expected: { milliseconds: 8 } },
      { name: 'several keys add up', value: { days: 7, months: 1 }, expected: { months: 1, days: 7 } },
      { name: 'two spellings of one unit add up', value: { d: 1, days: 2 }, expected: { days: 3 } },
      { name: 'a zero unit beside another', value: { days: 0, hours: 1 }, expected: { hours: 1 } },
      { name: 'ISO P1M7D', value: 'P1M7D', expected: { months: 1, days: 7 } },
      { name: 'ISO PT2S', value: 'PT2S', expected: { seconds: 2 } },
      { name: 'ISO P1W', value: 'P1W', expected: { weeks: 1 } },
      { name: 'ISO with every unit', value: 'P1Y2M3W4DT5H6M7S', expected: { years: 1, months: 2, weeks: 3, days: 4, hours: 5, minutes: 6, seconds: 7 } },
      { name: 'ISO fractional seconds', value: 'PT0.5S', expected: { seconds: 0.5 } },
      { name: 'ISO fraction with a comma', value: 'PT1,5H', expected: { hours: 1.5 } },
      { name: 'a number is milliseconds', value: 1500, expected: { milliseconds: 1500 } },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(parseDuration(c.value, 'repeat')).to.deep.equal({ ok: true, duration: of(c.expected) });
      });
    }
  });

  describe('parseDuration rejects, naming the field', () => {
    const cases: { name: string; value: unknown; mentions: RegExp }[] = [
      { name: 'zero length', value: { days: 0 }, mentions: /zero length/ },
      { name: 'an empty object', value: {}, mentions: /zero length/ },
      { name: 'zero milliseconds', value: 0, mentions: /zero length/ },
      { name: 'ISO zero', value: 'PT0S', mentions: /zero length/ },
      { name: 'a negative amount', value: { days: -1 }, mentions: /repeat\.days/ },
      { name: 'a negative number', value: -5, mentions: /non-negative/ },
      { name: 'NaN', value: Number.NaN, mentions: /non-negative/ },
      { name: 'Infinity', value: Number.POSITIVE_INFINITY, mentions: /non-negative/ },
      { name: 'a string amount', value: { days: '1' }, mentions: /repeat\.days/ },
      { name: 'a fractional day', value: { days: 1.5 }, mentions: /whole number of days/ },
      { name: 'a fractional month', value: { M: 0.5 }, mentions: /whole number of months/ },
      { name: 'an unknown key', value: { dayz: 1 }, mentions: /unknown duration key "dayz"/ },
      { name: 'D is not a key (case matters)', value: { D: 1 }, mentions: /unknown duration key "D"/ },
      { name: 'a constructor key', value: { constructor: 1 }, mentions: /unknown duration key "constructor"/ },
      { name: 'a __proto__ key', value: JSON.parse('{"__proto__": 1}'), mentions: /unknown duration key "__proto__"/ },
      { name: 'more than 1000 years', value: { years: 1001 }, mentions: /1000 years/ },
      { name: 'a huge number of days', value: { days: 1e300 }, mentions: /1000 years/ },
      { name: 'a huge ISO duration', value: 'PT999999999999H', mentions: /1000 years/ },
      { name: 'ISO P alone', value: 'P', mentions: /ISO 8601 duration/ },
      { name: 'ISO PT alone', value: 'PT', mentions: /ISO 8601 duration/ },
      { name: 'ISO P1DT', value: 'P1DT', mentions: /ISO 8601 duration/ },
      { name: 'ISO negative', value: '-P1D', mentions: /ISO 8601 duration/ },
      { name: 'ISO fractional day', value: 'P1.5D', mentions: /ISO 8601 duration/ },
      { name: 'ISO units out of order', value: 'P1D1M', mentions: /ISO 8601 duration/ },
      { name: 'lowercase ISO', value: 'p1d', mentions: /ISO 8601 duration/ },
      { name: 'a moment-style phrase', value: '1 day', mentions: /ISO 8601 duration/ },
      { name: 'null', value: null, mentions: /not a duration/ },
      { name: 'an array', value: [1, 'days'], mentions: /not a duration/ },
      { name: 'a boolean', value: true, mentions: /not a duration/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const parsed = parseDuration(c.value, 'repeat');
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) {
          expect(parsed.message).to.match(/^repeat[.:]/);
          expect(parsed.message).to.match(c.mentions);
        }
      });
    }
  });

  it('skips the keys the caller names', () => {
    const parsed = parseDuration({ days: 1, limit: 3, until: '2014-01-01' }, 'repeat', { ignoreKeys: ['limit', 'until'] });
    expect(parsed).to.deep.equal({ ok: true, duration: of({ days: 1 }) });
  });

  it('accepts zero length only when the caller allows it', () => {
    expect(parseDuration(0, 'retry.delay', { allowZero: true })).to.deep.equal({ ok: true, duration: zeroDuration() });
  });

  describe('addDuration: UTC calendar arithmetic, months before days', () => {
    const cases: { name: string; from: string; duration: Partial<Duration>; k?: number; expected: string }[] = [
      { name: 'Jan 31 + 1 month = Feb 28', from: '2013-01-31T10:00:00Z', duration: { months: 1 }, expected: '2013-02-28T10:00:00.000Z' },
      { name: 'Jan 31 + 1 month in a leap year = Feb 29', from: '2012-01-31', duration: { months: 1 }, expected: '2012-02-29T00:00:00.000Z' },
      { name: 'Jan 31 + 2 months = Mar 31', from: '2013-01-31', duration: { months: 1 }, k: 2, expected: '2013-03-31T00:00:00.000Z' },
      { name: 'Jan 31 + 3 months = Apr 30', from: '2013-01-31', duration: { months: 1 }, k: 3, expected: '2013-04-30T00:00:00.000Z' },
      { name: 'Feb 29 + 1 year = Feb 28', from: '2012-02-29', duration: { years: 1 }, expected: '2013-02-28T00:00:00.000Z' },
      { name: 'Feb 29 + 4 years = Feb 29', from: '2012-02-29', duration: { years: 1 }, k: 4, expected: '2016-02-29T00:00:00.000Z' },
      { name: '1 month and 7 days: month first', from: '2013-01-31', duration: { months: 1, days: 7 }, expected: '2013-03-07T00:00:00.000Z' },
      { name: '1 year 1 month counts as 13 months', from: '2012-02-29', duration: { years: 1, months: 1 }, expected: '2013-03-29T00:00:00.000Z' },
      { name: 'weeks', from: '2013-01-12', duration: { weeks: 2 }, expected: '2013-01-26T00:00:00.000Z' },
      { name: 'time units', from: '2013-01-12', duration: { hours: 1, minutes: 2, seconds: 3, milliseconds: 4 }, expected: '2013-01-12T01:02:03.004Z' },
      { name: 'fractional hours', from: '2013-01-12', duration: { hours: 1.5 }, expected: '2013-01-12T01:30:00.000Z' },
      { name: 'k = 0 is the start', from: '2013-01-12', duration: { days: 1 }, k: 0, expected: '2013-01-12T00:00:00.000Z' },
      { name: 'k × 1 ms over years', from: '2013-01-12', duration: { milliseconds: 1 }, k: 86_400_000 * 365, expected: '2014-01-12T00:00:00.000Z' },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(iso(addDuration(utc(c.from), of(c.duration), c.k))).to.equal(c.expected);
      });
    }

    it('is NaN past the range of a Date', () => {
      expect(addDuration(utc('9999-01-01'), of({ years: 1000 }), 1000)).to.be.NaN;
    });
  });

  it('durationToMs measures a month from its start', () => {
    expect(durationToMs(of({ months: 1 }), utc('2013-02-01'))).to.equal(28 * 86_400_000);
    expect(durationToMs(of({ months: 1 }), utc('2013-03-01'))).to.equal(31 * 86_400_000);
  });
});

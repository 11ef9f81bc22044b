import { expect } from 'chai';
import { formatDate, MAX_DATE_MS, parseTaskDate, quoteValue } from '../../src/task/dates';

describe('task dates', () => {
  describe('parseTaskDate accepts the ISO 8601 extended form', () => {
    const cases: { name: string; value: string; expected: string }[] = [
      { name: 'a date alone is midnight UTC', value: '2013-01-12', expected: '2013-01-12T00:00:00.000Z' },
      { name: 'hours and minutes, no zone is UTC', value: '2013-01-12T10:00', expected: '2013-01-12T10:00:00.000Z' },
      { name: 'seconds', value: '2013-01-12T10:00:05', expected: '2013-01-12T10:00:05.000Z' },
      { name: 'a space instead of T', value: '2013-01-12 10:00:05', expected: '2013-01-12T10:00:05.000Z' },
      { name: 'Z', value: '2013-01-12T10:00:00Z', expected: '2013-01-12T10:00:00.000Z' },
      { name: 'milliseconds', value: '2013-01-12T10:00:00.123Z', expected: '2013-01-12T10:00:00.123Z' },
      { name: 'one fraction digit is tenths', value: '2013-01-12T10:00:00.5Z', expected: '2013-01-12T10:00:00.500Z' },
      { name: 'fraction past ms is truncated', value: '2013-01-12T10:00:00.123999Z', expected: '2013-01-12T10:00:00.123Z' },
      { name: '+HH:MM is east of UTC', value: '2013-01-12T10:00:00+02:00', expected: '2013-01-12T08:00:00.000Z' },
      { name: '-HH:MM is west of UTC', value: '2013-01-12T22:30:00-05:30', expected: '2013-01-13T04:00:00.000Z' },
      { name: '+HHMM', value: '2013-01-12T10:00+0130', expected: '2013-01-12T08:30:00.000Z' },
      { name: '+HH', value: '2013-01-12T10:00+01', expected: '2013-01-12T09:00:00.000Z' },
      { name: '+14:00, the easternmost zone', value: '2013-01-12T10:00+14:00', expected: '2013-01-11T20:00:00.000Z' },
      { name: 'leap day', value: '2012-02-29', expected: '2012-02-29T00:00:00.000Z' },
      { name: 'year 0001', value: '0001-01-01', expected: '0001-01-01T00:00:00.000Z' },
      { name: 'year 9999', value: '9999-12-31T23:59:59.999Z', expected: '9999-12-31T23:59:59.999Z' },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const parsed = parseTaskDate(c.value);
        expect(parsed).to.deep.equal({ ok: true, ms: Date.parse(c.expected) });
        if (parsed.ok) expect(formatDate(parsed.ms)).to.equal(c.expected);
      });
    }
  });

  describe('parseTaskDate rejects, with a reason, anything else', () => {
    const cases: { name: string; value: unknown; reason?: RegExp }[] = [
      { name: 'basic form', value: '20130112T1000Z', reason: /basic form/ },
      { name: 'basic date alone', value: '20130112', reason: /basic form/ },
      { name: 'week date', value: '2013-W02-6', reason: /week/ },
      { name: 'ordinal date', value: '2013-012', reason: /ordinal/ },
      { name: 'February 30', value: '2013-02-30', reason: /no day 30/ },
      { name: 'February 29 in a common year', value: '2013-02-29', reason: /no day 29/ },
      { name: 'month 13', value: '2013-13-45', reason: /month 13/ },
      { name: 'hour 25', value: '2013-01-12T25:00', reason: /hour 25/ },
      { name: 'hour 24', value: '2013-01-12T24:00', reason: /hour 24/ },
      { name: 'minute 60', value: '2013-01-12T10:60', reason: /minute 60/ },
      { name: 'second 60', value: '2013-01-12T10:00:60Z', reason: /second 60/ },
      { name: 'year 0000', value: '0000-01-01', reason: /0001/ },
      { name: 'a five-digit year', value: '10000-01-01', reason: /0001/ },
      // The worker writes every date it sets in UTC: these would come back as years 0000 and 10000.
      { name: 'year 0001 at +14:00 (year 0000 in UTC)', value: '0001-01-01T00:00:00.025+14:00', reason: /once in UTC/ },
      { name: 'year 9999 at -14:00 (year 10000 in UTC)', value: '9999-12-31T23:00:00-14:00', reason: /once in UTC/ },
      { name: 'an expanded year', value: '+002013-01-12', reason: /0001/ },
      { name: 'a zone beyond +14:00', value: '2013-01-12T10:00+15:00', reason: /zone/ },
      { name: 'zone minutes 60', value: '2013-01-12T10:00+01:60', reason: /zone/ },
      { name: 'a zone on a date alone', value: '2013-01-12Z' },
      { name: 'hours without minutes', value: '2013-01-12T10' },
      { name: 'a fraction without seconds', value: '2013-01-12T10:00.5' },
      { name: 'lowercase t', value: '2013-01-12t10:00' },
      { name: 'two spaces', value: '2013-01-12  10:00' },
      { name: 'RFC 2822', value: 'Sat, 12 Jan 2013 10:00:00 GMT' },
      { name: 'an empty string', value: '' },
      { name: 'surrounding whitespace', value: ' 2013-01-12' },
      { name: 'a number (epoch ms)', value: 1357984800000, reason: /not a string/ },
      { name: 'null', value: null, reason: /not a string/ },
      { name: 'an object', value: { $date: '2013-01-12' }, reason: /not a string/ },
      { name: 'a 2 MB string', value: '2013-01-12'.padEnd(2_000_000, '0'), reason: /too long/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const parsed = parseTaskDate(c.value);
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) {
          expect(parsed.message).to.match(/is not an ISO 8601 date/);
          if (c.reason) expect(parsed.message).to.match(c.reason);
          expect(parsed.message.length).to.be.below(300);
        }
      });
    }
  });

  it('formatDate writes the canonical toISOString form', () => {
    expect(formatDate(Date.UTC(2013, 0, 12, 10))).to.equal('2013-01-12T10:00:00.000Z');
    expect(formatDate(MAX_DATE_MS)).to.equal('9999-12-31T23:59:59.999Z');
  });

  it('formatDate gives each instant its own text when many alternate (it remembers the last few)', () => {
    const base = Date.UTC(2026, 11, 7, 22, 0, 0, 0);
    // More instants than it remembers, each asked for twice in a row and again later.
    const instants = Array.from({ length: 7 }, (_, i) => base + i * 1001);
    for (const ms of [...instants, ...instants.reverse(), ...instants]) {
      expect(formatDate(ms)).to.equal(new Date(ms).toISOString());
      expect(formatDate(ms)).to.equal(new Date(ms).toISOString());
    }
    expect(() => formatDate(Number.NaN)).to.throw(RangeError);
  });

  it('extended-form dates written by the worker sort as text in time order', () => {
    const ms = [Date.UTC(1999, 11, 31), Date.UTC(2013, 0, 12, 9, 59, 59, 999), Date.UTC(2013, 0, 12, 10), Date.UTC(2100, 0, 1)];
    const texts = ms.map(formatDate);
    expect([...texts].sort()).to.deep.equal(texts);
  });

  describe('quoteValue', () => {
    it('JSON-quotes strings so control characters show escaped', () => {
      expect(quoteValue('a\nb\u0000')).to.equal('"a\\nb\\u0000"');
    });
    it('truncates long values to 80 characters', () => {
      const quoted = quoteValue('x'.repeat(2_000_000));
      expect(quoted.length).to.be.at.most(81);
      expect(quoted.endsWith('…')).to.equal(true);
    });
    it('shows objects shallowly without walking deep payloads', () => {
      let deep: unknown = 'bottom';
      for (let i = 0; i < 100_000; i++) deep = { deeper: deep };
      expect(quoteValue(deep)).to.equal('{"deeper":{"deeper":{…}}}');
    });
    it('names a __proto__ key as written', () => {
      expect(quoteValue(JSON.parse('{"__proto__": 1}'))).to.equal('{"__proto__":1}');
    });
  });
});

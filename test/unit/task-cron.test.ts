/**
 * Cron repeats: what croner accepts and refuses, its DST behaviour in four zones across both
 * 2026 transitions (pinned here, docs/spec.md §7: croner had DST bugs #284 and #286), month ends and
 * leap days, limit/until, misfire after an outage, and overlap with a long run — all with
 * the clock passed in. Transitions: see task-zones.test.ts.
 */
import { expect } from 'chai';
import { cronFireAfter } from '../../src/task/cron';
import { nextState, type RunRecord } from '../../src/task/next-state';
import { parseRepeat, type CronRepeat, type Repeat } from '../../src/task/repeat';
import { repeatSpecFromFlags } from '../../src/task/repeat-flags';
import { nextRepeat } from '../../src/task/series';
import { validateTask } from '../../src/task/validate';
import type { TaskDoc } from '../../src/types';

const utc = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();
const cron = (pattern: string, options: Partial<CronRepeat> = {}): CronRepeat => ({
  kind: 'cron',
  pattern,
  timezone: 'UTC',
  misfire: 'run_once',
  ...options,
});

/** A task's dates: its first `date`, then each next date, every run on time and 1 s long. */
function runSeries(repeat: Repeat, firstDate: string, runs: number): string[] {
  let dateMs = utc(firstDate);
  const dates = [iso(dateMs)];
  for (let repetitions = 1; repetitions <= runs; repetitions++) {
    const next = nextRepeat(repeat, { anchorMs: utc(firstDate), dateMs, startedAtMs: dateMs, repetitions, nowMs: dateMs + 1000 });
    if (!next) break;
    dateMs = next.dateMs;
    dates.push(iso(dateMs));
  }
  return dates;
}

describe('cron repeats', () => {
  describe('parseRepeat accepts what croner accepts', () => {
    const cases: { name: string; value: unknown; expected: CronRepeat }[] = [
      { name: '5 fields, read in UTC', value: { cron: '0 9 * * 1-5' }, expected: cron('0 9 * * 1-5') },
      { name: 'a time zone', value: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }, expected: cron('0 9 * * 1-5', { timezone: 'Europe/Paris' }) },
      { name: '6 fields (seconds first)', value: { cron: '*/5 * * * * *' }, expected: cron('*/5 * * * * *') },
      { name: 'month and weekday names', value: { cron: '0 9 * JAN-MAR mon-fri' }, expected: cron('0 9 * JAN-MAR mon-fri') },
      { name: 'L: the last day of the month', value: { cron: '0 9 L * *' }, expected: cron('0 9 L * *') },
      { name: '5L: the last Friday', value: { cron: '0 9 * * 5L' }, expected: cron('0 9 * * 5L') },
      { name: '#: the second Friday', value: { cron: '0 9 * * FRI#2' }, expected: cron('0 9 * * FRI#2') },
      { name: 'a nickname', value: { cron: '@daily' }, expected: cron('@daily') },
      {
        name: 'limit, until and misfire',
        value: { cron: '0 9 * * *', limit: 3, until: '2026-12-31', misfire: 'skip' },
        expected: cron('0 9 * * *', { limit: 3, untilMs: utc('2026-12-31'), misfire: 'skip' }),
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(parseRepeat(c.value)).to.deep.equal({ ok: true, repeat: c.expected }));
    }
  });

  describe('parseRepeat rejects, with croner\'s reason', () => {
    const cases: { name: string; value: unknown; message: RegExp }[] = [
      { name: 'a minute out of range', value: { cron: '61 * * * *' }, message: /^repeat\.cron: "61 \* \* \* \*" .*minute/ },
      { name: 'four fields', value: { cron: '* * * *' }, message: /^repeat\.cron: .*parts/ },
      { name: 'seven fields (a year)', value: { cron: '0 0 0 1 1 * 2030' }, message: /^repeat\.cron: .*7 parts/ },
      { name: 'garbage', value: { cron: 'every day' }, message: /^repeat\.cron: / },
      { name: 'a pattern that never fires', value: { cron: '0 0 30 2 *' }, message: /^repeat\.cron: .*never fires/ },
      { name: 'an empty pattern', value: { cron: '' }, message: /^repeat\.cron: / },
      { name: 'a number', value: { cron: 5 }, message: /^repeat\.cron: / },
      { name: 'an unknown zone', value: { cron: '0 9 * * *', timezone: 'Mars/Olympus' }, message: /^repeat\.timezone: unknown time zone "Mars\/Olympus"$/ },
      { name: 'a zone that is not a string', value: { cron: '0 9 * * *', timezone: 1 }, message: /^repeat\.timezone: / },
      { name: 'a duration beside cron', value: { cron: '0 9 * * *', days: 1 }, message: /^repeat: unknown key "days" beside cron/ },
      { name: 'a bad limit', value: { cron: '0 9 * * *', limit: 0 }, message: /^repeat\.limit: / },
      { name: 'a bad until', value: { cron: '0 9 * * *', until: 'tomorrow' }, message: /^repeat\.until: / },
      { name: 'a bad misfire', value: { cron: '0 9 * * *', misfire: 'all' }, message: /^repeat\.misfire: / },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const result = parseRepeat(c.value);
        expect(result.ok).to.equal(false);
        if (!result.ok) expect(result.message).to.match(c.message);
      });
    }

    it('validateTask puts a bad cron task in error naming repeat.cron', () => {
      const validated = validateTask({ worker: 'w', date: '2026-01-01', job: 'x', repeat: { cron: '0 25 * * *' } } as TaskDoc);
      expect(validated.ok).to.equal(false);
      if (!validated.ok) {
        expect(validated.field).to.equal('repeat');
        expect(validated.message).to.match(/^repeat\.cron: .*hour/);
      }
    });
  });

  describe('DST: fixed times run once, at the first instant after a gap', () => {
    const cases: { name: string; repeat: Repeat; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'Paris 02:30 daily, spring forward: 03:00 CEST on Mar 29',
        repeat: cron('30 2 * * *', { timezone: 'Europe/Paris' }),
        first: '2026-03-28T01:30:00Z',
        runs: 2,
        expected: ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
      },
      {
        name: 'Paris 02:30 daily, fall back: once, at the first 02:30 (CEST)',
        repeat: cron('30 2 * * *', { timezone: 'Europe/Paris' }),
        first: '2026-10-24T00:30:00Z',
        runs: 2,
        expected: ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
      },
      {
        name: 'New York 02:30 daily, spring forward: 03:00 EDT on Mar 8',
        repeat: cron('30 2 * * *', { timezone: 'America/New_York' }),
        first: '2026-03-07T07:30:00Z',
        runs: 2,
        expected: ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
      },
      {
        name: 'New York 01:30 daily, fall back: once, at the first 01:30 (EDT)',
        repeat: cron('30 1 * * *', { timezone: 'America/New_York' }),
        first: '2026-10-31T05:30:00Z',
        runs: 2,
        expected: ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'],
      },
      {
        name: 'New York 02:30 and 14:30 (a list is fixed-time too): 03:00 EDT on the gap day',
        repeat: cron('30 2,14 * * *', { timezone: 'America/New_York' }),
        first: '2026-03-07T19:30:00Z',
        runs: 3,
        expected: ['2026-03-07T19:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T18:30:00.000Z', '2026-03-09T06:30:00.000Z'],
      },
      {
        name: 'Sydney 02:30 daily, spring forward (October): 03:00 AEDT',
        repeat: cron('30 2 * * *', { timezone: 'Australia/Sydney' }),
        first: '2026-10-02T16:30:00Z',
        runs: 2,
        expected: ['2026-10-02T16:30:00.000Z', '2026-10-03T16:00:00.000Z', '2026-10-04T15:30:00.000Z'],
      },
      {
        name: 'Sydney 02:30 daily, fall back (April): once, at the first (AEDT)',
        repeat: cron('30 2 * * *', { timezone: 'Australia/Sydney' }),
        first: '2026-04-03T15:30:00Z',
        runs: 2,
        expected: ['2026-04-03T15:30:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-05T16:30:00.000Z'],
      },
      {
        name: 'Kolkata 02:30 daily: no DST, 21:00Z every day',
        repeat: cron('30 2 * * *', { timezone: 'Asia/Kolkata' }),
        first: '2026-03-27T21:00:00Z',
        runs: 2,
        expected: ['2026-03-27T21:00:00.000Z', '2026-03-28T21:00:00.000Z', '2026-03-29T21:00:00.000Z'],
      },
      {
        name: 'weekdays 09:00 Paris: Friday CET, Monday CEST',
        repeat: cron('0 9 * * 1-5', { timezone: 'Europe/Paris' }),
        first: '2026-03-27T08:00:00Z',
        runs: 1,
        expected: ['2026-03-27T08:00:00.000Z', '2026-03-30T07:00:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.repeat, c.first, c.runs)).to.deep.equal(c.expected));
    }
  });

  describe('DST: interval patterns follow real time', () => {
    const cases: { name: string; repeat: Repeat; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'every 30 min in New York, fall back: the repeated hour runs again (it really passes)',
        repeat: cron('*/30 * * * *', { timezone: 'America/New_York' }),
        first: '2026-11-01T05:00:00Z',
        runs: 4,
        expected: ['2026-11-01T05:00:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T06:30:00.000Z', '2026-11-01T07:00:00.000Z'],
      },
      {
        name: 'hourly in New York, spring forward: 01:00 EST then 03:00 EDT, one real hour apart',
        repeat: cron('0 * * * *', { timezone: 'America/New_York' }),
        first: '2026-03-08T05:00:00Z',
        runs: 3,
        expected: ['2026-03-08T05:00:00.000Z', '2026-03-08T06:00:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T08:00:00.000Z'],
      },
      {
        name: 'every minute in Los Angeles across fall back: 60 s apart, never backwards (croner #286)',
        repeat: cron('* * * * *', { timezone: 'America/Los_Angeles' }),
        first: '2026-11-01T08:58:00Z',
        runs: 4,
        expected: ['2026-11-01T08:58:00.000Z', '2026-11-01T08:59:00.000Z', '2026-11-01T09:00:00.000Z', '2026-11-01T09:01:00.000Z', '2026-11-01T09:02:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.repeat, c.first, c.runs)).to.deep.equal(c.expected));
    }

    it('every second for the hour around a fall back, each fire time 1 s after the one before', () => {
      let ms = utc('2026-10-25T00:30:00Z');
      for (let i = 0; i < 3600; i++) {
        const next = cronFireAfter('* * * * * *', 'Europe/Paris', ms);
        expect(next).to.equal(ms + 1000, `after ${iso(ms)}`);
        ms = next!;
      }
    });

    it('a UTC pattern does not depend on the host\'s zone (croner #284)', () => {
      const hostZone = process.env.TZ;
      process.env.TZ = 'Australia/Sydney';
      try {
        expect(new Date(0).getTimezoneOffset()).to.equal(-600, 'the host zone did not change');
        expect(runSeries(cron('0 * * * *'), '2025-10-05T01:00:00Z', 3)).to.deep.equal([
          '2025-10-05T01:00:00.000Z',
          '2025-10-05T02:00:00.000Z',
          '2025-10-05T03:00:00.000Z',
          '2025-10-05T04:00:00.000Z',
        ]);
      } finally {
        if (hostZone === undefined) delete process.env.TZ;
        else process.env.TZ = hostZone;
      }
    });
  });

  describe('month ends and leap days', () => {
    const cases: { name: string; repeat: Repeat; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'L in Paris: the last day of each month, 09:00 local',
        repeat: cron('0 9 L * *', { timezone: 'Europe/Paris' }),
        first: '2026-01-31T08:00:00Z',
        runs: 3,
        expected: ['2026-01-31T08:00:00.000Z', '2026-02-28T08:00:00.000Z', '2026-03-31T07:00:00.000Z', '2026-04-30T07:00:00.000Z'],
      },
      {
        name: 'the 31st runs only in months that have one',
        repeat: cron('0 0 31 * *'),
        first: '2026-01-31T00:00:00Z',
        runs: 2,
        expected: ['2026-01-31T00:00:00.000Z', '2026-03-31T00:00:00.000Z', '2026-05-31T00:00:00.000Z'],
      },
      {
        name: 'Feb 29 09:00 Kolkata: leap years only',
        repeat: cron('0 9 29 2 *', { timezone: 'Asia/Kolkata' }),
        first: '2024-02-29T03:30:00Z',
        runs: 2,
        expected: ['2024-02-29T03:30:00.000Z', '2028-02-29T03:30:00.000Z', '2032-02-29T03:30:00.000Z'],
      },
      {
        name: 'the last Friday of the month in Sydney',
        repeat: cron('0 18 * * 5L', { timezone: 'Australia/Sydney' }),
        first: '2026-01-30T07:00:00Z',
        runs: 2,
        expected: ['2026-01-30T07:00:00.000Z', '2026-02-27T07:00:00.000Z', '2026-03-27T07:00:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.repeat, c.first, c.runs)).to.deep.equal(c.expected));
    }
  });

  describe('the first date and limit / until', () => {
    const cases: { name: string; repeat: Repeat; first: string; runs: number; expected: string[] }[] = [
      {
        name: 'the task\'s date is its first run even off the pattern; then the pattern',
        repeat: cron('0 9 * * *'),
        first: '2026-05-01T12:34:56Z',
        runs: 2,
        expected: ['2026-05-01T12:34:56.000Z', '2026-05-02T09:00:00.000Z', '2026-05-03T09:00:00.000Z'],
      },
      {
        name: 'limit 3: three runs in all',
        repeat: cron('* * * * * *', { limit: 3 }),
        first: '2026-05-01T00:00:00Z',
        runs: 10,
        expected: ['2026-05-01T00:00:00.000Z', '2026-05-01T00:00:01.000Z', '2026-05-01T00:00:02.000Z'],
      },
      {
        name: 'limit 1: once',
        repeat: cron('0 9 * * *', { limit: 1 }),
        first: '2026-05-01T09:00:00Z',
        runs: 10,
        expected: ['2026-05-01T09:00:00.000Z'],
      },
      {
        name: 'until: no run after it',
        repeat: cron('0 9 * * *', { untilMs: utc('2026-05-03T12:00:00Z') }),
        first: '2026-05-01T09:00:00Z',
        runs: 10,
        expected: ['2026-05-01T09:00:00.000Z', '2026-05-02T09:00:00.000Z', '2026-05-03T09:00:00.000Z'],
      },
      {
        name: 'until exactly on a fire time includes it',
        repeat: cron('0 9 * * *', { untilMs: utc('2026-05-02T09:00:00Z') }),
        first: '2026-05-01T09:00:00Z',
        runs: 10,
        expected: ['2026-05-01T09:00:00.000Z', '2026-05-02T09:00:00.000Z'],
      },
      {
        name: 'until and limit together: the first to end wins',
        repeat: cron('0 9 * * *', { limit: 5, untilMs: utc('2026-05-02T10:00:00Z') }),
        first: '2026-05-01T09:00:00Z',
        runs: 10,
        expected: ['2026-05-01T09:00:00.000Z', '2026-05-02T09:00:00.000Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => expect(runSeries(c.repeat, c.first, c.runs)).to.deep.equal(c.expected));
    }
  });

  describe('misfire after an outage', () => {
    // An every-minute job whose 10:00 run was missed: the worker is back at 13:00:30.
    const dateMs = utc('2026-05-01T10:00:00Z');
    const backAtMs = utc('2026-05-01T13:00:30Z');
    const cases: { name: string; repeat: Repeat; startedAtMs: number; nowMs: number; expected: string | null }[] = [
      { name: 'the late run stands for all missed minutes: next is the next future minute', repeat: cron('* * * * *'), startedAtMs: backAtMs, nowMs: backAtMs + 2000, expected: '2026-05-01T13:01:00.000Z' },
      { name: 'the same with skip', repeat: cron('* * * * *', { misfire: 'skip' }), startedAtMs: backAtMs, nowMs: backAtMs + 2000, expected: '2026-05-01T13:01:00.000Z' },
      { name: 'a run outlasting fire times (overlap), run_once: the latest missed, at once', repeat: cron('* * * * *'), startedAtMs: dateMs, nowMs: backAtMs, expected: '2026-05-01T13:00:00.000Z' },
      { name: 'a run outlasting fire times, skip: the next future one', repeat: cron('* * * * *', { misfire: 'skip' }), startedAtMs: dateMs, nowMs: backAtMs, expected: '2026-05-01T13:01:00.000Z' },
      { name: 'run_once with until inside the overlap: the last fire time before until', repeat: cron('* * * * *', { untilMs: utc('2026-05-01T11:30:30Z') }), startedAtMs: dateMs, nowMs: backAtMs, expected: '2026-05-01T11:30:00.000Z' },
      { name: 'skip with until inside the overlap: the series ends', repeat: cron('* * * * *', { misfire: 'skip', untilMs: utc('2026-05-01T11:30:30Z') }), startedAtMs: dateMs, nowMs: backAtMs, expected: null },
      { name: 'until before the late start: the series ends', repeat: cron('* * * * *', { untilMs: utc('2026-05-01T12:00:00Z') }), startedAtMs: backAtMs, nowMs: backAtMs + 2000, expected: null },
      { name: 'a zone: weekdays 09:00 Paris, back on Monday 10:00', repeat: cron('0 9 * * 1-5', { timezone: 'Europe/Paris' }), startedAtMs: utc('2026-05-04T08:00:00Z'), nowMs: utc('2026-05-04T08:00:05Z'), expected: '2026-05-05T07:00:00.000Z' },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const next = nextRepeat(c.repeat, { anchorMs: dateMs, dateMs, startedAtMs: c.startedAtMs, repetitions: 1, nowMs: c.nowMs });
        expect(next && iso(next.dateMs)).to.equal(c.expected);
      });
    }

    it('every second, three years down: one date, computed at once', () => {
      const started = process.hrtime.bigint();
      const longAgo = utc('2023-05-01T00:00:00Z');
      const next = nextRepeat(cron('* * * * * *'), { anchorMs: longAgo, dateMs: longAgo, repetitions: 1, nowMs: utc('2026-05-01T10:00:00.500Z') });
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(next && iso(next.dateMs)).to.equal('2026-05-01T10:00:00.000Z');
      expect(elapsedMs).to.be.below(50);
    });
  });

  describe('through nextState, as the worker writes it', () => {
    const doc = (fields: Record<string, unknown>): TaskDoc => ({
      _id: 'cron-1',
      _rev: '2-a',
      worker: 'nightly',
      job: 'succeeds',
      status: 'running',
      repeat: { cron: '0 * * * *', timezone: 'Europe/Paris' },
      ...fields,
    });
    const finish = (task: TaskDoc, startedAt: string, finishedAt: string): TaskDoc => {
      const validated = validateTask(task);
      if (!validated.ok) throw new Error(validated.message);
      const run: RunRecord = { startedAtMs: utc(startedAt), finishedAtMs: utc(finishedAt), worker: 'nightly', instance: 'i-1' };
      return nextState(task, validated.task, { kind: 'success', result: null }, run, { historyLimit: 5 });
    };

    it('an on-time run: waiting for the next fire time, no anchor_date', () => {
      const next = finish(doc({ date: '2026-05-01T10:00:00.000Z' }), '2026-05-01T10:00:00.100Z', '2026-05-01T10:00:01Z');
      expect(next).to.include({ status: 'waiting', date: '2026-05-01T11:00:00.000Z', repetitions: 1 });
      expect(next).to.not.have.property('anchor_date');
    });

    it('after an outage: one run now, then the next future fire time', () => {
      const next = finish(doc({ date: '2026-05-01T10:00:00.000Z' }), '2026-05-01T15:20:00Z', '2026-05-01T15:20:02Z');
      expect(next).to.include({ status: 'waiting', date: '2026-05-01T16:00:00.000Z' });
    });

    it('overlap: a run longer than the interval, then one run at once, then the series on its dates', () => {
      const long = finish(doc({ date: '2026-05-01T10:00:00.000Z' }), '2026-05-01T10:00:00Z', '2026-05-01T12:30:00Z');
      expect(long).to.include({ status: 'waiting', date: '2026-05-01T12:00:00.000Z' });
      const caughtUp = finish({ ...long, status: 'running' }, '2026-05-01T12:30:00.050Z', '2026-05-01T12:30:01Z');
      expect(caughtUp).to.include({ status: 'waiting', date: '2026-05-01T13:00:00.000Z', repetitions: 2 });
    });

    it('limit: done after the last run', () => {
      const next = finish(doc({ date: '2026-05-01T10:00:00.000Z', repetitions: 2, repeat: { cron: '0 * * * *', limit: 3 } }), '2026-05-01T10:00:00Z', '2026-05-01T10:00:01Z');
      expect(next).to.include({ status: 'done', repetitions: 3 });
    });
  });

  describe('repeatSpecFromFlags (after task add --cron / --every / --tz)', () => {
    const cases: { name: string; flags: Parameters<typeof repeatSpecFromFlags>[0]; expected: Record<string, unknown> | undefined }[] = [
      { name: 'no flag: no repeat', flags: {}, expected: undefined },
      { name: '--cron', flags: { cron: '0 9 * * 1-5' }, expected: { cron: '0 9 * * 1-5' } },
      { name: '--cron --tz', flags: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }, expected: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } },
      { name: '--every 1M7d', flags: { every: '1M7d' }, expected: { months: 1, days: 7 } },
      { name: '--every 1d --tz', flags: { every: '1d', timezone: 'America/New_York' }, expected: { days: 1, timezone: 'America/New_York' } },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const built = repeatSpecFromFlags(c.flags);
        expect(built).to.deep.equal({ ok: true, repeat: c.expected });
        if (built.ok && built.repeat) expect(parseRepeat(built.repeat).ok).to.equal(true);
      });
    }
    const rejected: { name: string; flags: Parameters<typeof repeatSpecFromFlags>[0]; message: RegExp }[] = [
      { name: 'both --cron and --every', flags: { cron: '* * * * *', every: '1d' }, message: /^--cron and --every/ },
      { name: '--tz alone', flags: { timezone: 'UTC' }, message: /^--tz: / },
      { name: 'a bad --tz', flags: { every: '1d', timezone: 'Mars/Olympus' }, message: /^--tz: unknown time zone "Mars\/Olympus"/ },
      { name: 'a bad --cron', flags: { cron: '0 9 * *' }, message: /^--cron: / },
      { name: 'a bad --every', flags: { every: 'daily' }, message: /^--every: / },
    ];
    for (const c of rejected) {
      it(`rejects ${c.name}`, () => {
        const built = repeatSpecFromFlags(c.flags);
        expect(built.ok).to.equal(false);
        if (!built.ok) expect(built.message).to.match(c.message);
      });
    }
  });
});

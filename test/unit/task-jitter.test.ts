/**
 * `repeat.jitter` and a cron repeat's `delay`: the dates they lead to, as tables (the jittered
 * dates are pinned: the offsets come from a stable hash of the task id and the series date, the
 * same in every process and every release), and the rules around them: never before the series
 * date, no drift, a late start keeps its occurrence, retries are not jittered.
 */
import { expect } from 'chai';
import { nextState } from '../../src/task/next-state';
import { parseRepeat, type Repeat } from '../../src/task/repeat';
import { repeatSpecFromFlags } from '../../src/task/repeat-flags';
import { firstRunDate, jitterOffsetMs, nextRepeat } from '../../src/task/series';
import { previewSchedule } from '../../src/task/schedule-preview';
import { validateTask } from '../../src/task/validate';
import type { TaskDoc } from '../../src/types';

const utc = (text: string): number => Date.parse(text);
const iso = (ms: number): string => new Date(ms).toISOString();

function parsed(spec: unknown): Repeat {
  const result = parseRepeat(spec);
  if (!result.ok) throw new Error(result.message);
  return result.repeat;
}

/** A task's dates from its first `date`: each run starts on time and lasts 1 s. */
function runSeries(spec: unknown, taskId: string, firstDate: string, runs: number): string[] {
  const repeat = parsed(spec);
  let dateMs = utc(firstDate);
  const dates = [iso(dateMs)];
  for (let repetitions = 1; repetitions <= runs; repetitions++) {
    const next = nextRepeat(repeat, { anchorMs: utc(firstDate), dateMs, startedAtMs: dateMs, repetitions, nowMs: dateMs + 1000, taskId });
    if (!next) break;
    dateMs = next.dateMs;
    dates.push(iso(dateMs));
  }
  return dates;
}

describe('jitter and cron delay', () => {
  describe('jittered dates (the first date is the user\'s, run as given)', () => {
    const cases: Array<{ name: string; spec: unknown; taskId: string; first: string; expected: string[] }> = [
      {
        name: 'hourly cron, jitter 5m',
        spec: { cron: '0 * * * *', jitter: '5m' },
        taskId: 'report-a',
        first: '2026-01-05T09:00:00Z',
        expected: ['2026-01-05T09:00:00.000Z', '2026-01-05T10:04:22.003Z', '2026-01-05T11:00:46.371Z', '2026-01-05T12:00:45.118Z', '2026-01-05T13:01:33.940Z'],
      },
      {
        name: 'the same schedule, another task: other offsets',
        spec: { cron: '0 * * * *', jitter: '5m' },
        taskId: 'report-b',
        first: '2026-01-05T09:00:00Z',
        expected: ['2026-01-05T09:00:00.000Z', '2026-01-05T10:01:21.656Z', '2026-01-05T11:01:23.265Z', '2026-01-05T12:02:58.998Z', '2026-01-05T13:01:50.648Z'],
      },
      {
        name: 'every 6 h, jitter 30m: the anchor does not drift',
        spec: { hours: 6, jitter: '30m' },
        taskId: 'sync-1',
        first: '2026-01-05T00:00:00Z',
        expected: ['2026-01-05T00:00:00.000Z', '2026-01-05T06:06:40.254Z', '2026-01-05T12:17:44.707Z', '2026-01-05T18:28:21.674Z', '2026-01-06T00:10:38.256Z'],
      },
      {
        name: 'daily 09:00 Paris, jitter 10m, across the spring DST change',
        spec: { cron: '0 9 * * *', timezone: 'Europe/Paris', jitter: '10m' },
        taskId: 'daily-paris',
        first: '2026-03-27T08:00:00Z',
        expected: ['2026-03-27T08:00:00.000Z', '2026-03-28T08:02:12.998Z', '2026-03-29T07:03:01.424Z', '2026-03-30T07:04:24.388Z', '2026-03-31T07:03:47.243Z'],
      },
      {
        name: 'hourly cron with a delay of 30 s and a jitter of 1 min',
        spec: { cron: '0 * * * *', delay: '30s', jitter: '1m' },
        taskId: 'both',
        first: '2026-01-05T09:00:30Z',
        expected: ['2026-01-05T09:00:30.000Z', '2026-01-05T10:00:31.025Z', '2026-01-05T11:01:04.548Z', '2026-01-05T12:01:01.039Z'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(runSeries(c.spec, c.taskId, c.first, c.expected.length - 1)).to.deep.equal(c.expected);
      });
    }
  });

  describe('cron with a delay: each fire time plus the delay', () => {
    const cases: Array<{ name: string; spec: unknown; first: string; expected: string[] }> = [
      { name: 'hourly, 30 s after', spec: { cron: '0 * * * *', delay: '30s' }, first: '2026-01-05T09:00:30Z', expected: ['2026-01-05T09:00:30.000Z', '2026-01-05T10:00:30.000Z', '2026-01-05T11:00:30.000Z', '2026-01-05T12:00:30.000Z'] },
      { name: 'every 15 min, 5 min after (ISO 8601)', spec: { cron: '*/15 * * * *', delay: 'PT5M' }, first: '2026-01-05T09:05:00Z', expected: ['2026-01-05T09:05:00.000Z', '2026-01-05T09:20:00.000Z', '2026-01-05T09:35:00.000Z', '2026-01-05T09:50:00.000Z'] },
      { name: 'a delay longer than the gap: hourly, 90 min after', spec: { cron: '0 * * * *', delay: '90m' }, first: '2026-01-05T10:30:00Z', expected: ['2026-01-05T10:30:00.000Z', '2026-01-05T11:30:00.000Z', '2026-01-05T12:30:00.000Z', '2026-01-05T13:30:00.000Z'] },
      { name: 'weekdays 09:00, 2 h after: Friday, then Monday', spec: { cron: '0 9 * * 1-5', delay: '2h' }, first: '2026-01-08T11:00:00Z', expected: ['2026-01-08T11:00:00.000Z', '2026-01-09T11:00:00.000Z', '2026-01-12T11:00:00.000Z', '2026-01-13T11:00:00.000Z'] },
      { name: '02:30 Paris, 30 min after: the delay is elapsed time after the fire time (03:00 in the gap)', spec: { cron: '30 2 * * *', timezone: 'Europe/Paris', delay: '30m' }, first: '2026-03-28T02:00:00Z', expected: ['2026-03-28T02:00:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T01:00:00.000Z', '2026-03-31T01:00:00.000Z'] },
      { name: 'a delay in milliseconds', spec: { cron: '0 0 * * *', delay: 1500 }, first: '2026-01-05T00:00:01.500Z', expected: ['2026-01-05T00:00:01.500Z', '2026-01-06T00:00:01.500Z'] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(runSeries(c.spec, 'x', c.first, c.expected.length - 1)).to.deep.equal(c.expected);
      });
    }

    it('misfire skip after an outage counts in delayed dates: the first one still ahead', () => {
      const repeat = parsed({ cron: '0 * * * *', delay: '50m', misfire: 'skip' });
      // Down from 09:50 to 13:20: 10:50, 11:50, 12:50 were missed; 13:50 is ahead.
      const next = nextRepeat(repeat, { anchorMs: utc('2026-01-05T09:50:00Z'), dateMs: utc('2026-01-05T09:50:00Z'), repetitions: 1, nowMs: utc('2026-01-05T13:20:00Z') });
      expect(next && iso(next.dateMs)).to.equal('2026-01-05T13:50:00.000Z');
    });

    it('a run that outlasts the gap: the next delayed date that has not passed is not a missed one', () => {
      // Every minute, 50 s after; the 10:00:50 run ends at 10:01:05: 10:01:50 is still ahead.
      const repeat = parsed({ cron: '* * * * *', delay: '50s', misfire: 'skip' });
      const dateMs = utc('2026-01-05T10:00:50Z');
      const next = nextRepeat(repeat, { anchorMs: dateMs, dateMs, startedAtMs: dateMs, repetitions: 1, nowMs: utc('2026-01-05T10:01:05Z') });
      expect(next && iso(next.dateMs)).to.equal('2026-01-05T10:01:50.000Z');
    });
  });

  describe('the rules', () => {
    it('each date is its series date plus an offset in [0, jitter), never before it', () => {
      const repeat = parsed({ cron: '*/10 * * * *', jitter: '4m' });
      const offsets: number[] = [];
      for (let k = 0; k < 300; k++) {
        const seriesMs = utc('2026-01-05T09:00:00Z');
        const date = nextRepeat(repeat, { anchorMs: seriesMs, dateMs: seriesMs, startedAtMs: seriesMs, repetitions: 1, nowMs: seriesMs + 1000, taskId: `task-${k}` })!.dateMs;
        const offset = date - utc('2026-01-05T09:10:00Z');
        expect(offset).to.be.at.least(0).and.below(240_000);
        expect(offset).to.equal(jitterOffsetMs(`task-${k}`, utc('2026-01-05T09:10:00Z'), 240_000));
        offsets.push(offset);
      }
      // Spread over the window, not bunched.
      expect(Math.min(...offsets)).to.be.below(24_000);
      expect(Math.max(...offsets)).to.be.above(216_000);
    });

    it('does not drift: after 200 runs every date is still within a jitter of anchor + k × interval', () => {
      const anchor = '2026-01-05T00:00:00Z';
      const dates = runSeries({ hours: 1, jitter: '59m' }, 'no-drift', anchor, 200);
      expect(dates).to.have.length(201);
      dates.forEach((date, k) => {
        const offset = utc(date) - (utc(anchor) + k * 3_600_000);
        expect(offset, `run ${k} at ${date}`).to.be.at.least(0).and.below(59 * 60_000);
      });
    });

    it('a run that started late within its jitter still leads to the next occurrence, not the one after', () => {
      const repeat = parsed({ cron: '0 * * * *', jitter: '50m' });
      const seriesMs = utc('2026-01-05T10:00:00Z');
      const dateMs = seriesMs + jitterOffsetMs('late', seriesMs, 50 * 60_000);
      // Started 15 min late, on an offset of up to 50 min: past 11:00 perhaps, still 10:00's run.
      const startedAtMs = dateMs + 15 * 60_000;
      const next = nextRepeat(repeat, { anchorMs: seriesMs, dateMs, startedAtMs, repetitions: 2, nowMs: startedAtMs + 1000, taskId: 'late' })!;
      expect(next.dateMs).to.equal(utc('2026-01-05T11:00:00Z') + jitterOffsetMs('late', utc('2026-01-05T11:00:00Z'), 50 * 60_000));
    });

    it('an offset never carries a run past until', () => {
      const repeat = parsed({ cron: '0 * * * *', jitter: '30m', until: '2026-01-05T11:00:00Z' });
      for (let k = 0; k < 50; k++) {
        const next = nextRepeat(repeat, { anchorMs: 0, dateMs: utc('2026-01-05T10:00:00Z'), repetitions: 1, nowMs: utc('2026-01-05T10:00:01Z'), taskId: `u${k}` });
        expect(next!.dateMs).to.be.at.most(utc('2026-01-05T11:00:00Z'));
      }
    });

    it('retries are not jittered, and the series after a retried success goes on from its own dates', () => {
      const doc: TaskDoc = { _id: 'retried', _rev: '3-x', worker: 'w', date: '2026-01-05T10:00:00.000Z', job: 'j', status: 'running', repeat: { hours: 1, jitter: '20m' }, retry: { limit: 2, delay: 'PT1M' } };
      const task = validateTask(doc);
      if (!task.ok) throw new Error(task.message);
      const finishedAtMs = utc('2026-01-05T10:00:02Z');
      const failed = nextState(doc, task.task, { kind: 'failure', error: { message: 'no' } }, { startedAtMs: utc('2026-01-05T10:00:00Z'), finishedAtMs, worker: 'w', instance: 'i' }, { historyLimit: 0 });
      expect(failed.date).to.equal('2026-01-05T10:01:02.000Z');
      const retry = validateTask({ ...failed, status: 'running' });
      if (!retry.ok) throw new Error(retry.message);
      const succeeded = nextState({ ...failed, status: 'running' }, retry.task, { kind: 'success', result: 1 }, { startedAtMs: utc('2026-01-05T10:01:02Z'), finishedAtMs: utc('2026-01-05T10:01:03Z'), worker: 'w', instance: 'i' }, { historyLimit: 0 });
      expect(succeeded.date).to.equal(iso(utc('2026-01-05T11:00:00Z') + jitterOffsetMs('retried', utc('2026-01-05T11:00:00Z'), 20 * 60_000)));
    });

    it('the same task and series date give the same date in every process (a pure function of both)', () => {
      const a = runSeries({ cron: '0 * * * *', jitter: '5m' }, 'shared', '2026-01-05T09:00:00Z', 5);
      const b = runSeries({ cron: '0 * * * *', jitter: '5m' }, 'shared', '2026-01-05T09:00:00Z', 5);
      expect(a).to.deep.equal(b);
    });
  });

  describe('first dates, flags and after next', () => {
    it('firstRunDate: the first series date from now, with the delay and the task\'s own offset', () => {
      const repeat = parsed({ cron: '0 * * * *', delay: '30s', jitter: '5m' });
      const from = utc('2026-01-05T09:10:00Z');
      expect(iso(firstRunDate(repeat, 'new-task', from)!)).to.equal(iso(utc('2026-01-05T10:00:30Z') + jitterOffsetMs('new-task', utc('2026-01-05T10:00:30Z'), 300_000)));
      // A fire time whose delayed date has not passed yet is still the first.
      expect(iso(firstRunDate(parsed({ cron: '0 * * * *', delay: '30s' }), undefined, utc('2026-01-05T09:00:10Z'))!)).to.equal('2026-01-05T09:00:30.000Z');
    });

    it('repeatSpecFromFlags: --jitter and --delay', () => {
      expect(repeatSpecFromFlags({ cron: '0 * * * *', delay: '30s', jitter: '5m' })).to.deep.equal({ ok: true, repeat: { cron: '0 * * * *', delay: '30s', jitter: '5m' } });
      expect(repeatSpecFromFlags({ every: '1h', jitter: '10m' })).to.deep.equal({ ok: true, repeat: { hours: 1, jitter: '10m' } });
      const refused: Array<[Parameters<typeof repeatSpecFromFlags>[0], RegExp]> = [
        [{ jitter: '5m' }, /^--jitter: needs --cron or --every/],
        [{ delay: '5m' }, /^--delay: needs --cron or --every/],
        [{ every: '1h', delay: '5m' }, /^--delay: only a cron schedule/],
        [{ cron: '0 * * * *', jitter: 'soon' }, /^--jitter: /],
        [{ cron: '0 * * * *', jitter: '2h' }, /^repeat\.jitter: .*not shorter/],
      ];
      for (const [flags, message] of refused) {
        const built = repeatSpecFromFlags(flags);
        expect(built.ok, JSON.stringify(flags)).to.equal(false);
        if (!built.ok) expect(built.message).to.match(message);
      }
    });

    it('after next shows a stored task\'s jittered dates, and says a repeat alone has no offsets to show', () => {
      const task: TaskDoc = { _id: 'report-a', worker: 'w', date: '2026-01-05T09:00:00Z', job: 'j', status: 'waiting', repeat: { cron: '0 * * * *', jitter: '5m' } };
      const preview = previewSchedule({ task }, { count: 3, fromMs: utc('2026-01-05T08:00:00Z') });
      expect(preview.ok && preview.preview.rows.map((row) => row.utc)).to.deep.equal(['2026-01-05T09:00:00.000Z', '2026-01-05T10:04:22.003Z', '2026-01-05T11:00:46.371Z']);
      expect(preview.ok && preview.preview.summary).to.match(/jitter 5 min/);
      const alone = previewSchedule({ repeat: { cron: '0 * * * *', delay: '30s', jitter: '5m' } }, { count: 2, fromMs: utc('2026-01-05T08:10:00Z') });
      expect(alone.ok && alone.preview.rows.map((row) => row.utc)).to.deep.equal(['2026-01-05T09:00:30.000Z', '2026-01-05T10:00:30.000Z']);
      expect(alone.ok && alone.preview.summary).to.match(/delay 30 s/).and.match(/jitter 5 min \(not shown/);
    });
  });
});

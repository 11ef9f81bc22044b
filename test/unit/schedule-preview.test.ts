/**
 * `after next`: the dates a schedule runs on, in UTC and in its zone. The pure preview is
 * tested as tables with `fromMs` passed in; the command is run in process with its output
 * captured (a task id is looked up through an injected fetch, no database needed).
 */
import { expect } from 'chai';
import { Command } from 'commander';
import { registerNextCommand, resolveSource, previewLines } from '../../src/cli/next-command';
import type { CliContext } from '../../src/cli/context';
import { AfterError } from '../../src/errors';
import { previewSchedule, type PreviewSource } from '../../src/task/schedule-preview';
import type { TaskDoc } from '../../src/types';

const utc = (text: string): number => Date.parse(text);

function preview(source: PreviewSource, from: string, count = 5) {
  const result = previewSchedule(source, { count, fromMs: utc(from) });
  if (!result.ok) throw new Error(result.message);
  return result.preview;
}

const task = (fields: Record<string, unknown>): TaskDoc => ({ _id: 't1', worker: 'w', job: 'x', status: 'waiting', ...fields }) as TaskDoc;

describe('schedule preview', () => {
  describe('a repeat alone: the series of a task whose first date is --from', () => {
    it('cron in Paris across the spring gap, UTC beside local time', () => {
      const p = preview({ repeat: { cron: '30 2 * * *', timezone: 'Europe/Paris' } }, '2026-03-27T12:00:00Z', 3);
      expect(p.summary).to.equal('cron "30 2 * * *" in Europe/Paris, misfire run_once');
      expect(p.zone).to.equal('Europe/Paris');
      expect(p.rows.map((r) => [r.utc, r.local])).to.deep.equal([
        ['2026-03-28T01:30:00.000Z', 'Sat 2026-03-28 02:30:00 +01:00'],
        ['2026-03-29T01:00:00.000Z', 'Sun 2026-03-29 03:00:00 +02:00'],
        ['2026-03-30T00:30:00.000Z', 'Mon 2026-03-30 02:30:00 +02:00'],
      ]);
      expect(p.end).to.equal(undefined);
    });

    it('a cron fire time exactly at --from is the first row', () => {
      const p = preview({ repeat: { cron: '0 9 * * *' } }, '2026-05-01T09:00:00Z', 1);
      expect(p.rows.map((r) => r.utc)).to.deep.equal(['2026-05-01T09:00:00.000Z']);
    });

    it('an interval starts at --from; limit ends the list early and says so', () => {
      const p = preview({ repeat: { months: 1, timezone: 'Australia/Sydney', limit: 3 } }, '2026-01-31T09:00:00+11:00', 10);
      expect(p.summary).to.equal('every 1 month (calendar in Australia/Sydney), limit 3, misfire run_once');
      expect(p.rows.map((r) => r.local)).to.deep.equal([
        'Sat 2026-01-31 09:00:00 +11:00',
        'Sat 2026-02-28 09:00:00 +11:00',
        'Tue 2026-03-31 09:00:00 +11:00',
      ]);
      expect(p.end).to.match(/limit 3/);
    });

    it('until ends the list', () => {
      const p = preview({ repeat: { cron: '0 9 * * *', until: '2026-05-03T12:00:00Z' } }, '2026-05-01T00:00:00Z', 10);
      expect(p.rows).to.have.length(3);
      expect(p.end).to.match(/until 2026-05-03T12:00:00.000Z/);
    });

    it('an ISO 8601 duration, in UTC', () => {
      const p = preview({ repeat: 'P1M7D' }, '2026-01-31T00:00:00Z', 3);
      expect(p.summary).to.equal('every 1 month 7 days (calendar in UTC), misfire run_once');
      expect(p.rows.map((r) => r.utc)).to.deep.equal(['2026-01-31T00:00:00.000Z', '2026-03-07T00:00:00.000Z', '2026-04-14T00:00:00.000Z']);
    });

    it('gives exactly --count rows', () => {
      expect(preview({ repeat: { cron: '* * * * * *' } }, '2026-05-01T00:00:00Z', 7).rows).to.have.length(7);
    });

    it('an invalid repeat is the validator\'s message', () => {
      const result = previewSchedule({ repeat: { cron: '0 9 * * *', timezone: 'Mars/Olympus' } }, { count: 3, fromMs: 0 });
      expect(result).to.deep.equal({ ok: false, message: 'repeat.timezone: unknown time zone "Mars/Olympus"' });
    });
  });

  describe('a task: its pending date, then what its repeat leads to', () => {
    it('on time: the date, then the pattern', () => {
      const p = preview({ task: task({ date: '2026-05-01T12:34:56Z', repeat: { cron: '0 9 * * *' } }) }, '2026-05-01T00:00:00Z', 3);
      expect(p.rows.map((r) => [r.utc, r.overdue])).to.deep.equal([
        ['2026-05-01T12:34:56.000Z', false],
        ['2026-05-02T09:00:00.000Z', false],
        ['2026-05-03T09:00:00.000Z', false],
      ]);
    });

    it('overdue after an outage: runs at once, then the next future date (not every missed one)', () => {
      const doc = task({ date: '2026-11-20T08:00:00Z', repeat: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } });
      const p = preview({ task: doc }, '2026-11-23T12:00:00Z', 3);
      expect(p.rows.map((r) => [r.utc, r.overdue])).to.deep.equal([
        ['2026-11-20T08:00:00.000Z', true],
        ['2026-11-24T08:00:00.000Z', false],
        ['2026-11-25T08:00:00.000Z', false],
      ]);
    });

    it('limit counts the runs already made', () => {
      const doc = task({ date: '2026-05-01T00:00:00Z', repeat: { days: 1, limit: 5 }, repetitions: 3, anchor_date: '2026-04-28T00:00:00Z' });
      const p = preview({ task: doc }, '2026-04-30T00:00:00Z', 10);
      expect(p.rows.map((r) => r.utc)).to.deep.equal(['2026-05-01T00:00:00.000Z', '2026-05-02T00:00:00.000Z']);
      expect(p.end).to.match(/limit 5/);
    });

    it('an interval task continues from its anchor, not from its (retried) date', () => {
      const doc = task({ date: '2026-05-01T10:07:00Z', repeat: { hours: 1 }, anchor_date: '2026-05-01T09:00:00Z' });
      const p = preview({ task: doc }, '2026-05-01T10:00:00Z', 3);
      expect(p.rows.map((r) => r.utc)).to.deep.equal(['2026-05-01T10:07:00.000Z', '2026-05-01T11:00:00.000Z', '2026-05-01T12:00:00.000Z']);
    });

    it('a task without repeat runs once', () => {
      const p = preview({ task: task({ date: '2026-05-01T00:00:00Z' }) }, '2026-04-01T00:00:00Z');
      expect(p.summary).to.equal('runs once');
      expect(p.rows.map((r) => r.utc)).to.deep.equal(['2026-05-01T00:00:00.000Z']);
    });

    for (const status of ['done', 'error', 'canceled', 'cancel']) {
      it(`a ${status} task has no next date`, () => {
        const p = preview({ task: task({ date: '2026-05-01T00:00:00Z', status, repeat: 'P1D' }) }, '2026-04-01T00:00:00Z');
        expect(p.rows).to.deep.equal([]);
        expect(p.end).to.contain(status);
      });
    }

    it('an invalid task is the validator\'s message', () => {
      const result = previewSchedule({ task: task({ date: '2026-02-30' }) }, { count: 3, fromMs: 0 });
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.message).to.match(/^date: /);
    });
  });

  describe('after next', () => {
    async function afterNext(args: string[]): Promise<{ lines: string[]; error?: unknown }> {
      const lines: string[] = [];
      const ctx: CliContext = {
        out: { line: (text = '') => lines.push(text), warn: (text) => lines.push(text) },
        config: () => {
          throw new Error('no database in this test');
        },
        binPath: '',
        env: {},
      };
      const program = new Command('after').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      registerNextCommand(program, ctx);
      try {
        await program.parseAsync(['node', 'after', 'next', ...args]);
        return { lines };
      } catch (error) {
        return { lines, error };
      }
    }

    it('prints a summary, a table of UTC and local dates, and how the series ends', async () => {
      const { lines, error } = await afterNext(['{"cron": "30 1 * * *", "timezone": "America/New_York", "limit": 3}', '--from', '2026-10-31']);
      expect(error).to.equal(undefined);
      expect(lines).to.deep.equal([
        'cron "30 1 * * *" in America/New_York, limit 3, misfire run_once',
        '#  UTC                       America/New_York',
        '1  2026-10-31T05:30:00.000Z  Sat 2026-10-31 01:30:00 -04:00',
        '2  2026-11-01T05:30:00.000Z  Sun 2026-11-01 01:30:00 -04:00',
        '3  2026-11-02T06:30:00.000Z  Mon 2026-11-02 01:30:00 -05:00',
        'the series ends: limit 3 reached',
      ]);
    });

    it('takes --cron/--every with --tz and -n', async () => {
      const { lines } = await afterNext(['--every', '1d', '--tz', 'America/New_York', '--from', '2026-03-07T09:00:00-05:00', '-n', '2']);
      expect(lines.slice(2)).to.deep.equal([
        '1  2026-03-07T14:00:00.000Z  Sat 2026-03-07 09:00:00 -05:00',
        '2  2026-03-08T13:00:00.000Z  Sun 2026-03-08 09:00:00 -04:00',
      ]);
    });

    it('without --from counts from now', async () => {
      const before = Date.now();
      const { lines } = await afterNext(['--cron', '* * * * * *', '-n', '1']);
      const first = Date.parse(lines[2]!.split(/\s+/)[1]!);
      expect(first).to.be.at.least(before);
      expect(first - before).to.be.below(3000);
    });

    const usageErrors: { name: string; args: string[] }[] = [
      { name: 'an invalid cron', args: ['{"cron": "61 * * * *"}'] },
      { name: 'an unknown zone', args: ['--cron', '0 9 * * *', '--tz', 'Mars/Olympus'] },
      { name: 'bad JSON', args: ['{"cron": '] },
      { name: 'a bad --from', args: ['P1D', '--from', 'soon'] },
      { name: 'a schedule and --cron', args: ['P1D', '--cron', '* * * * *'] },
      { name: 'no schedule at all', args: [] },
    ];
    for (const c of usageErrors) {
      it(`is a usage error for ${c.name}`, async () => {
        const { error } = await afterNext(c.args);
        expect(error).to.be.instanceOf(AfterError);
        expect((error as AfterError).code).to.equal('E_USAGE');
      });
    }

    it('looks a task id up, and reads a JSON task document', async () => {
      const stored = task({ _id: 'nightly-report', date: '2026-05-01T09:00:00Z', repeat: { cron: '0 9 * * *' } });
      const fetched: string[] = [];
      const fetchTask = async (id: string): Promise<TaskDoc> => {
        fetched.push(id);
        return stored;
      };
      expect(await resolveSource('nightly-report', {}, fetchTask)).to.deep.equal({ task: stored });
      expect(fetched).to.deep.equal(['nightly-report']);
      expect(await resolveSource(JSON.stringify(stored), {}, fetchTask)).to.deep.equal({ task: stored });
      expect(await resolveSource('P1D', {}, fetchTask)).to.deep.equal({ repeat: 'P1D' });
      expect(await resolveSource('{"days": 1}', {}, fetchTask)).to.deep.equal({ repeat: { days: 1 } });
      expect(fetched).to.have.length(1);
    });

    it('marks an overdue date', () => {
      const lines = previewLines(preview({ task: task({ date: '2026-05-01T09:00:00Z' }) }, '2026-05-02T00:00:00Z'));
      expect(lines[2]).to.match(/overdue: runs at once/);
    });
  });
});

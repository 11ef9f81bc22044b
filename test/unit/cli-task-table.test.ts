/**
 * `after task list`: per task its id, worker, job, schedule (repeat or cron with its zone), next
 * date, status and last run's outcome, from documents as users and workers leave them.
 */
import { expect } from 'chai';
import { describeSchedule, lastOutcome, nextDate, tasksTable } from '../../src/cli/task-table';
import type { TaskDoc } from '../../src/types';

const base = (fields: Record<string, unknown> = {}): TaskDoc => ({ _id: 't1', worker: 'billing', date: '2030-01-01T09:00:00.000Z', job: 'invoice', status: 'waiting', ...fields });
const run = { started_at: '2029-12-01T09:00:00.000Z', finished_at: '2029-12-01T09:00:01.000Z', duration_ms: 1000, worker: 'billing', instance: 'i' };

describe('after task list: the schedule column', () => {
  const cases: Array<[unknown, string]> = [
    [undefined, 'once'],
    [{ months: 1, days: 7 }, 'every 1M7d (UTC)'],
    ['PT1H30M', 'every 1h30m (UTC)'],
    [{ days: 1, timezone: 'America/New_York' }, 'every 1d (America/New_York)'],
    [{ cron: '0 9 * * 1-5' }, 'cron 0 9 * * 1-5 (UTC)'],
    [{ cron: '0 9 * * 1-5', timezone: 'Europe/Paris', limit: 3 }, 'cron 0 9 * * 1-5 (Europe/Paris), limit 3'],
    [{ hours: 1, until: '2030-06-01' }, 'every 1h (UTC), until 2030-06-01T00:00:00.000Z'],
    [{ cron: 'never' }, 'invalid: {"cron":"never"}'],
  ];
  for (const [repeat, shown] of cases) it(`${JSON.stringify(repeat)} → ${shown}`, () => expect(describeSchedule(repeat)).to.equal(shown));
});

describe('after task list: next date and last run', () => {
  it('the next date: date, or a run now before it; none once finished', () => {
    expect(nextDate(base())).to.equal('2030-01-01T09:00:00.000Z');
    expect(nextDate(base({ run_now: '2029-12-24T10:00:00.000Z' }))).to.equal('2029-12-24T10:00:00.000Z (run now)');
    expect(nextDate(base({ run_now: '2031-01-01T00:00:00.000Z' }))).to.equal('2030-01-01T09:00:00.000Z');
    expect(nextDate(base({ status: 'paused' }))).to.equal('2030-01-01T09:00:00.000Z');
    for (const status of ['done', 'error', 'canceled', 'cancel']) expect(nextDate(base({ status }))).to.equal('-');
  });

  it('the last run: from history, else from last_run and error, else never', () => {
    expect(lastOutcome(base())).to.equal('never');
    expect(lastOutcome(base({ history: [{ ...run, status: 'done' }] }))).to.equal('success');
    expect(lastOutcome(base({ history: [{ ...run, status: 'error', error: { message: 'boom' } }, { ...run, status: 'done' }] }))).to.equal('failure: boom');
    expect(lastOutcome(base({ last_run: run }))).to.equal('success');
    expect(lastOutcome(base({ last_run: run, status: 'error', error: { message: 'disk full' } }))).to.equal('failure: disk full');
    expect(lastOutcome(base({ last_run: run, status: 'canceled' }))).to.equal('canceled');
    expect(lastOutcome(base({ history: [{ ...run, status: 'error', error: { message: 'x'.repeat(200) } }] }))).to.have.length.below(80);
  });

  it('one row per task with every column, whatever a user left in the fields', () => {
    const lines = tasksTable([
      base({ repeat: { cron: '0 9 * * *', timezone: 'Europe/Paris' }, history: [{ ...run, status: 'done' }] }),
      base({ _id: 't2', job: { name: 'report', arguments: [] }, status: 'error', last_run: run, error: { message: 'boom' } }),
      base({ _id: 't3', worker: 42, job: null, repeat: 'often', status: undefined }),
    ]);
    expect(lines[0]!.split(/\s{2,}/)).to.deep.equal(['ID', 'WORKER', 'JOB', 'SCHEDULE', 'NEXT', 'STATUS', 'LAST RUN']);
    expect(lines[1]!.split(/\s{2,}/)).to.deep.equal(['t1', 'billing', 'invoice', 'cron 0 9 * * * (Europe/Paris)', '2030-01-01T09:00:00.000Z', 'waiting', 'success']);
    expect(lines[2]!.split(/\s{2,}/)).to.deep.equal(['t2', 'billing', 'report', 'once', '-', 'error', 'failure: boom']);
    expect(lines[3]!.split(/\s{2,}/)).to.deep.equal(['t3', '42', '-', 'invalid: often', '2030-01-01T09:00:00.000Z', 'waiting', 'never']);
  });
});

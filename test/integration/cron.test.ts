/**
 * Cron repeats with a real worker: `after start <name>` as a child process, tasks posted over
 * HTTP, start times read from what the `records` fixture job wrote.
 */
import { expect } from 'chai';
import { Command } from 'commander';
import { registerNextCommand } from '../../src/cli/next-command';
import { iso, postTask, readRecords, startWorker, useSuiteDb, waitForStatus } from '../helpers/index';

describe('cron repeats with a worker', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  /** Start times (epoch ms) the `records` job wrote, in order. */
  const starts = (): number[] => readRecords().map((run) => run.startedAt);

  it('"* * * * * *" with limit 3 runs three times, each at a whole second, never early, then done', async () => {
    await startWorker(db, 'every-second');
    const firstMs = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const id = await postTask(db, { worker: 'every-second', date: iso(firstMs), job: 'records', repeat: { cron: '* * * * * *', limit: 3 } });
    const done = await waitForStatus(db, id, 'done', 20_000);
    expect(done.executions).to.equal(3);
    expect(done.repetitions).to.equal(3);
    // Every date after the first is a fire time: a whole second.
    expect(done.date).to.match(/:\d\d\.000Z$/);
    expect(done).to.not.have.property('anchor_date');

    const runs = starts();
    expect(runs).to.have.length(3);
    expect(runs[0]).to.be.at.least(firstMs);
    runs.forEach((startMs, k) => {
      // Within the first half of its second: started on its whole-second date, not late.
      expect(startMs % 1000, `run ${k + 1} started at ${iso(startMs)}`).to.be.below(500);
      // Each date is the first fire time after the previous run started, so a run in the same
      // second as the one before it would have started early.
      if (k > 0) expect(Math.floor(startMs / 1000)).to.be.above(Math.floor(runs[k - 1]! / 1000));
    });
  });

  it('after an outage a cron task runs once at once, then at its next fire time', async () => {
    await startWorker(db, 'back-from-outage');
    // Its date is an hour ago: 3,600 fire times were missed while "down".
    const missedMs = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const id = await postTask(db, { worker: 'back-from-outage', date: iso(missedMs), job: 'records', repeat: { cron: '* * * * * *', limit: 2 } });
    const done = await waitForStatus(db, id, 'done', 20_000);
    expect(done.executions).to.equal(2);
    const [catchUp, next] = starts();
    // The second run is the first fire time after the catch-up run started, on its second.
    expect(Math.floor(next! / 1000)).to.equal(Math.floor(catchUp! / 1000) + 1);
    expect(next! % 1000).to.be.below(500);
  });

  it('after next <task-id> reads the stored task and prints its dates in UTC and in its zone', async () => {
    const id = await postTask(db, {
      _id: 'weekday-report',
      worker: 'nobody-runs-this',
      date: '2030-03-29T08:00:00Z',
      job: 'records',
      repeat: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' },
    });
    const lines: string[] = [];
    const program = new Command('after').exitOverride();
    registerNextCommand(program, {
      out: { line: (text = '') => lines.push(text), warn: (text) => lines.push(text) },
      config: () => db.config(),
      binPath: '',
      env: db.env,
    });
    await program.parseAsync(['node', 'after', 'next', id, '-n', '3', '--from', '2030-03-01']);
    expect(lines).to.deep.equal([
      'cron "0 9 * * 1-5" in Europe/Paris, misfire run_once',
      '#  UTC                       Europe/Paris',
      '1  2030-03-29T08:00:00.000Z  Fri 2030-03-29 09:00:00 +01:00',
      '2  2030-04-01T07:00:00.000Z  Mon 2030-04-01 09:00:00 +02:00',
      '3  2030-04-02T07:00:00.000Z  Tue 2030-04-02 09:00:00 +02:00',
    ]);
  });
});

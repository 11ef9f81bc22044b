/**
 * Repeats and retries as a worker carries them out: the dates it writes, the counters, the
 * job's start times on the fake clock.
 */
import { expect } from 'chai';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

describe('worker (in memory): repeat and retry', () => {
  closeSimulationsAfterEach();

  it('repeats every interval from the first date, `limit` runs in all, then done', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'tick', repeat: { seconds: 10, limit: 3 } });

    const first = await sim.until(sim.finished('tick'));
    expect(first.payload).to.deep.include({ status: 'waiting', date: iso(START_MS + 10_000) });
    let doc = await sim.get('tick');
    // The run wrote `waiting` with the next date; the worker then holds that date (scheduled).
    expect(doc).to.deep.include({ status: 'scheduled', date: iso(START_MS + 10_000), anchor_date: iso(START_MS), repetitions: 1, executions: 1 });

    await sim.until(sim.finished('tick'));
    expect(await sim.get('tick')).to.deep.include({ date: iso(START_MS + 20_000), repetitions: 2, executions: 2 });

    const last = await sim.until(sim.finished('tick'));
    expect(last.payload.status).to.equal('done');
    doc = await sim.get('tick');
    expect(doc).to.deep.include({ status: 'done', repetitions: 3, executions: 3 });
    expect(sim.runsOf('tick').map((run) => run.atMs - START_MS)).to.deep.equal([0, 10_000, 20_000]);

    await sim.advance(60_000);
    expect(sim.runsOf('tick'), 'no fourth run').to.have.length(3);
  });

  it('keeps to the series dates when a run takes a while', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'slow', job: { name: 'waits', arguments: [] }, data: { ms: 4_000 }, repeat: { seconds: 10, limit: 2 } });
    await sim.until(sim.finished('slow'));
    expect((await sim.get('slow')).date, 'the next date counts from the anchor, not the end of the run').to.equal(iso(START_MS + 10_000));
    await sim.until(sim.finished('slow'));
    expect(sim.runsOf('slow').map((run) => run.atMs - START_MS)).to.deep.equal([0, 10_000]);
  });

  it('retries a failure after delay × backoff^n, `limit` times, then error', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'flaky', job: { name: 'fails', arguments: [] }, retry: { limit: 2, delay: { seconds: 10 }, backoff: 3 } });

    expect((await sim.until(sim.finished('flaky'))).payload).to.deep.include({ status: 'waiting', date: iso(START_MS + 10_000), error: 'boom' });
    expect(await sim.get('flaky')).to.deep.include({ status: 'scheduled', retries: 1, executions: 1, date: iso(START_MS + 10_000) });

    await sim.until(sim.finished('flaky'));
    expect(await sim.get('flaky')).to.deep.include({ status: 'scheduled', retries: 2, executions: 2, date: iso(START_MS + 40_000) });

    expect((await sim.until(sim.finished('flaky'))).payload.status).to.equal('error');
    const doc = await sim.get('flaky');
    expect(doc).to.deep.include({ status: 'error', retries: 2, executions: 3 });
    expect(doc.error).to.deep.equal({ message: 'boom', code: 'E_BOOM' });
    expect(sim.runsOf('flaky').map((run) => run.atMs - START_MS)).to.deep.equal([0, 10_000, 40_000]);
  });

  it('resets the retries after a success, and a repeat goes on from its series after a retried failure', async () => {
    const sim = new Simulation();
    let calls = 0;
    await sim.start({
      jobs: {
        second_fails: () => {
          calls += 1;
          if (calls === 2) throw new Error('once');
          return { calls };
        },
      },
    });
    await sim.post({ _id: 'mixed', job: { name: 'second_fails', arguments: [] }, repeat: { minutes: 1, limit: 3 }, retry: { limit: 1, delay: { seconds: 5 } } });
    await sim.until(sim.finished('mixed'));
    expect(await sim.get('mixed')).to.deep.include({ date: iso(START_MS + 60_000), retries: 0, repetitions: 1 });
    await sim.until(sim.finished('mixed'));
    expect(await sim.get('mixed'), 'the failure is retried 5 s later').to.deep.include({ date: iso(START_MS + 65_000), retries: 1, repetitions: 1 });
    await sim.until(sim.finished('mixed'));
    const doc = await sim.get('mixed');
    expect(doc, 'the retry succeeded: back on the series, the next date from the anchor').to.deep.include({
      status: 'scheduled',
      date: iso(START_MS + 120_000),
      retries: 0,
      repetitions: 2,
      executions: 3,
    });
    expect(doc).not.to.have.property('error');
    expect(sim.runsOf('mixed').map((run) => run.atMs - START_MS)).to.deep.equal([0, 60_000, 65_000]);
  });

  it('runs an overdue repeat once, then continues at its next date after now', async () => {
    const sim = new Simulation();
    await sim.post({ _id: 'missed', date: iso(START_MS - 35_000), repeat: { seconds: 10 } });
    await sim.start();
    await sim.until(sim.finished('missed'));
    // Dates -35, -25, -15, -5 s passed while nothing ran: one run stands for them all.
    expect(await sim.get('missed')).to.deep.include({ status: 'scheduled', date: iso(START_MS + 5_000), executions: 1 });
    await sim.advance(4_999);
    expect(sim.runsOf('missed')).to.have.length(1);
    await sim.until(sim.finished('missed'));
    expect(sim.runsOf('missed').map((run) => run.atMs - START_MS)).to.deep.equal([0, 5_000]);
  });
});

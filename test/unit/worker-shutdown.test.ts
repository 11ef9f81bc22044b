/**
 * A worker instance stopping: held tasks go back to `waiting` for any instance, a run in progress
 * finishes within the grace period and is recorded, past it is aborted and handed back, and the
 * stop ends in bounded time even when the database never answers.
 */
import { expect } from 'chai';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

describe('worker (in memory): shutdown', () => {
  closeSimulationsAfterEach();

  it('hands held tasks back (waiting, no lease), and another instance runs them at their dates', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const ids = ['h1', 'h2', 'h3'];
    for (const [i, id] of ids.entries()) await sim.post({ _id: id, date: iso(START_MS + 60_000 + i * 1_000) });
    await sim.post({ _id: 'soon', date: iso(START_MS + 700) });
    await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.lease?.instance === a.worker.instance));
    expect(a.worker.heldCount).to.equal(4);

    await a.stop();
    for (const id of [...ids, 'soon']) {
      const doc = await sim.get(id);
      expect(doc.status, id).to.equal('waiting');
      expect(doc, id).not.to.have.property('lease');
    }
    const handedBack = sim.events.filter((e) => e.name === 'task:handed-back').map((e) => e.payload.id);
    expect(handedBack.sort()).to.deep.equal(ids);
    expect(sim.runs).to.have.length(0);

    await sim.start();
    await sim.until(async () => (await Promise.all([...ids, 'soon'].map((id) => sim.get(id)))).every((doc) => doc.status === 'done'));
    expect(sim.runs.map((run) => [run.id, run.worker, run.atMs - START_MS])).to.deep.equal([
      ['soon', 'b', 700],
      ['h1', 'b', 60_000],
      ['h2', 'b', 61_000],
      ['h3', 'b', 62_000],
    ]);
  });

  it('lets a run finish within the grace period and records it; nothing new starts meanwhile', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'finishing', job: { name: 'waits', arguments: [] }, data: { ms: 3_000 } });
    await sim.until(sim.started('finishing'));
    await sim.post({ _id: 'due-during-stop', date: iso(START_MS + 1_000) });
    await sim.settle();

    const tookMs = await a.stop(10_000);
    expect(tookMs, 'the stop waited for the run, not the whole grace').to.equal(3_000);
    const doc = await sim.get('finishing');
    expect(doc).to.deep.include({ status: 'done', executions: 1, result: { waited: 3_000 } });
    expect(doc).not.to.have.property('lease');
    expect(sim.runsOf('due-during-stop'), 'no new run during the stop').to.have.length(0);
    expect(await sim.get('due-during-stop')).to.deep.include({ status: 'waiting' });
    expect(await sim.get('due-during-stop')).not.to.have.property('lease');
  });

  it('aborts a run still going at the end of the grace period and hands it back', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'stubborn', job: { name: 'hangs', arguments: [] } });
    await sim.until(sim.started('stubborn'));
    await sim.advance(1_000);

    const tookMs = await a.stop(2_000);
    expect(tookMs).to.equal(2_000);
    expect(sim.runsOf('stubborn')[0]!.signal.aborted, 'the job was told through its signal').to.equal(true);
    const doc = await sim.get('stubborn');
    expect(doc.status).to.equal('waiting');
    expect(doc).not.to.have.property('lease');
    expect(doc).not.to.have.property('executions');
    expect(sim.events.some((e) => e.name === 'task:handed-back' && e.payload.id === 'stubborn')).to.equal(true);

    const b = await sim.start({ jobs: { hangs: () => ({ second: 'try' }) } });
    await sim.until(sim.finished('stubborn'));
    expect((await sim.get('stubborn')).last_run?.instance, 'run again at once by the next instance').to.equal(b.worker.instance);
  });

  it('stops within grace + 5 s even when the database never answers', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'stuck', job: { name: 'hangs', arguments: [] } });
    await sim.post({ _id: 'held', date: iso(START_MS + 60_000) });
    await sim.until(sim.started('stuck'));
    await sim.settle();
    a.connection.kill();

    const tookMs = await a.stop(3_000);
    expect(tookMs).to.be.at.most(3_000 + 5_000);
    expect(sim.runsOf('stuck')[0]!.signal.aborted).to.equal(true);
  });

  it('a second stop() waits for the first one', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'w', job: { name: 'waits', arguments: [] }, data: { ms: 1_500 } });
    await sim.until(sim.started('w'));
    const first = a.worker.stop();
    let secondDone = false;
    const second = a.worker.stop().then(() => (secondDone = true));
    await sim.advance(1_000);
    expect(secondDone).to.equal(false);
    await sim.until(Promise.all([first, second]));
    a.stopped = true;
    expect((await sim.get('w')).status).to.equal('done');
  });
});

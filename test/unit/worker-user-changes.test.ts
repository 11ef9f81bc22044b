/**
 * A user changes a task document a worker holds or runs: cancel, reschedule, delete, pause.
 */
import { expect } from 'chai';
import { FEED_PACE_MAX_MS } from '../../src/worker/pipeline';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

describe('worker (in memory): a user changes a task it holds', () => {
  closeSimulationsAfterEach();

  it('cancel during a run: the job is told through its signal, the task ends canceled', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'long', job: { name: 'hangs', arguments: [] } });
    await sim.until(sim.started('long'));
    await sim.advance(2_000);
    const finished = sim.finished('long');
    await sim.edit('long', (doc) => ({ ...doc, status: 'cancel' }));
    expect((await sim.until(finished)).payload.status).to.equal('canceled');

    const [run] = sim.runsOf('long');
    expect(run?.signal.aborted, 'the job saw its signal abort').to.equal(true);
    const doc = await sim.get('long');
    expect(doc.status).to.equal('canceled');
    expect(doc.executions).to.equal(1);
    expect(doc.last_run?.duration_ms).to.equal(2_000);
    expect(doc).not.to.have.property('lease');
  });

  it("a user's change to a running task's data (its feed leaves the running task out) is kept by the run's finish", async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'edited', job: { name: 'gated', arguments: [] }, data: { version: 1 } });
    await sim.until(sim.started('edited'));
    await sim.edit('edited', (doc) => ({ ...doc, data: { version: 2 } }));
    const finished = sim.finished('edited');
    sim.openGate('edited');
    expect((await sim.until(finished)).payload.status).to.equal('done');
    expect(await sim.get('edited')).to.deep.include({ status: 'done', executions: 1, data: { version: 2 } });
    expect(sim.runsOf('edited')).to.have.length(1);
  });

  it('cancel that lands after the job ended, while its lease heartbeat was on its way: canceled, the repeat stops', async () => {
    const sim = new Simulation({ worker: { lease_ms: 3_000 } });
    const a = await sim.start();
    a.connection.latencyMs = 50;
    await sim.post({ _id: 'late-cancel', repeat: { minutes: 1 }, job: { name: 'waits', arguments: [] }, data: { ms: 1_010 } });
    await sim.until(sim.started('late-cancel'));
    const startedMs = sim.now;
    // The heartbeat leaves at +1000 ms and lands at +1050; the job ends at +1010; the cancel lands at +1020.
    await sim.advanceTo(startedMs + 1_020);
    await sim.edit('late-cancel', (doc) => ({ ...doc, status: 'cancel' }));
    await sim.advance(120_000);
    expect(await sim.get('late-cancel')).to.deep.include({ status: 'canceled', executions: 1 });
    expect(sim.runsOf('late-cancel')).to.have.length(1);
  });

  it('cancel of a held task: canceled, and it never runs', async () => {
    const sim = new Simulation();
    await sim.start();
    const dateMs = START_MS + 60_000;
    await sim.post({ _id: 'held', date: iso(dateMs) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === 'held'));
    const canceled = sim.next('task:canceled', (e) => e.id === 'held');
    await sim.edit('held', (doc) => ({ ...doc, status: 'cancel' }));
    await sim.until(canceled);
    const doc = await sim.get('held');
    expect(doc.status).to.equal('canceled');
    expect(doc).not.to.have.property('lease');
    await sim.advanceTo(dateMs + 10_000);
    expect(sim.runsOf('held')).to.have.length(0);
  });

  it('cancel of a due task during a burst that fills every run slot: seen within FEED_PACE_MAX_MS, and it never runs', async () => {
    const sim = new Simulation();
    await sim.start({ concurrency: 2 });
    const ids = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
    for (const id of ids) await sim.post({ _id: id, date: iso(START_MS), job: 'gated' });
    await sim.until(() => sim.runs.length === 2, { what: 'both run slots taken' });
    const last = ids.find((id) => sim.runsOf(id).length === 0)!;
    const canceled = sim.next('task:canceled', (e) => e.id === last);
    const askedAtMs = sim.now;
    await sim.edit(last, (doc) => ({ ...doc, status: 'cancel' }));
    await sim.until(canceled, { withinMs: FEED_PACE_MAX_MS + 100 });
    expect(sim.now - askedAtMs).to.be.at.most(FEED_PACE_MAX_MS);
    for (const id of ids) sim.openGate(id);
    await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.status === 'done' || doc.status === 'canceled'));
    expect((await sim.get(last)).status).to.equal('canceled');
    expect(sim.runsOf(last)).to.have.length(0);
    expect(sim.runs.map((run) => run.id).sort()).to.deep.equal(ids.filter((id) => id !== last).sort());
  });

  it('cancel of a task beyond the horizon is acknowledged too', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'next-week', date: iso(START_MS + 7 * 86_400_000) });
    const canceled = sim.next('task:canceled', (e) => e.id === 'next-week');
    await sim.edit('next-week', (doc) => ({ ...doc, status: 'cancel' }));
    await sim.until(canceled);
    expect((await sim.get('next-week')).status).to.equal('canceled');
  });

  it('reschedule of a held task: the new date is honoured, the old one is not', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const oldMs = START_MS + 60_000;
    const newMs = START_MS + 90_000;
    await sim.post({ _id: 'moved', date: iso(oldMs) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === 'moved'));
    const rescheduled = sim.next('task:scheduled', (e) => e.id === 'moved');
    await sim.edit('moved', (doc) => ({ ...doc, status: 'reschedule', date: iso(newMs) }));
    expect((await sim.until(rescheduled)).payload.date).to.equal(iso(newMs));
    const held = await sim.get('moved');
    expect(held.status).to.equal('scheduled');
    expect(held.lease).to.deep.equal({ instance: a.worker.instance, expires_at: iso(newMs + sim.config.worker.claim_grace_ms) });

    await sim.advanceTo(newMs - 1);
    expect(sim.runsOf('moved'), 'nothing at the old date').to.have.length(0);
    await sim.until(sim.finished('moved'));
    expect(sim.runsOf('moved').map((run) => run.atMs)).to.deep.equal([newMs]);
  });

  it('reschedule to an earlier date runs it then', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'sooner', date: iso(START_MS + 60_000) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === 'sooner'));
    await sim.advance(10_000);
    await sim.edit('sooner', (doc) => ({ ...doc, status: 'reschedule', date: iso(START_MS + 20_000) }));
    await sim.until(sim.finished('sooner'));
    expect(sim.runsOf('sooner').map((run) => run.atMs - START_MS)).to.deep.equal([20_000]);
  });

  it('reschedule of a repeating task restarts the series from the new date', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'series', repeat: { seconds: 10 } });
    await sim.until(sim.finished('series'));
    expect(await sim.get('series')).to.deep.include({ date: iso(START_MS + 10_000), anchor_date: iso(START_MS) });

    // The old series would run at 10, 20, 30...; moved to 25 s it runs at 25, 35, 45.
    await sim.edit('series', (doc) => ({ ...doc, status: 'reschedule', date: iso(START_MS + 25_000) }));
    await sim.until(sim.finished('series'));
    await sim.until(sim.finished('series'));
    expect(sim.runsOf('series').map((run) => run.atMs - START_MS)).to.deep.equal([0, 25_000, 35_000]);
    expect(await sim.get('series')).to.deep.include({ date: iso(START_MS + 45_000), anchor_date: iso(START_MS + 25_000) });
  });

  it('delete of a held task: dropped from memory, never runs', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const dateMs = START_MS + 60_000;
    await sim.post({ _id: 'gone', date: iso(dateMs) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === 'gone'));
    expect(a.worker.heldCount).to.equal(1);
    const doc = await sim.get('gone');
    expect((await sim.store.write([{ doc: { _id: 'gone', _rev: doc._rev, _deleted: true } }]))[0]!.kind).to.equal('written');
    await sim.settle();
    expect(a.worker.heldCount).to.equal(0);
    await sim.advanceTo(dateMs + 10_000);
    expect(sim.runsOf('gone')).to.have.length(0);
    expect(await sim.store.get('gone')).to.equal(null);
  });

  it('delete during a run: the job is told through its signal, nothing is written back', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'doomed', job: { name: 'hangs', arguments: [] } });
    await sim.until(sim.started('doomed'));
    const doc = await sim.get('doomed');
    expect((await sim.store.write([{ doc: { _id: 'doomed', _rev: doc._rev, _deleted: true } }]))[0]!.kind).to.equal('written');
    await sim.until(() => a.worker.runningCount === 0 && a.worker.heldCount === 0, { withinMs: 1_000 });
    expect(sim.runsOf('doomed')[0]?.signal.aborted).to.equal(true);
    await sim.advance(120_000);
    expect(await sim.store.get('doomed'), 'the run is not written over the deletion').to.equal(null);
    expect(sim.runsOf('doomed')).to.have.length(1);
  });

  it('a task the user pauses is kept out of memory until set back to waiting', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const dateMs = START_MS + 30_000;
    await sim.post({ _id: 'paused', date: iso(dateMs) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === 'paused'));
    await sim.edit('paused', (doc) => ({ ...doc, status: 'paused' }));
    await sim.settle();
    expect(a.worker.heldCount).to.equal(0);
    await sim.advanceTo(dateMs + 60_000);
    expect(sim.runsOf('paused')).to.have.length(0);
    expect((await sim.get('paused')).status).to.equal('paused');
    const finished = sim.finished('paused');
    await sim.edit('paused', (doc) => ({ ...doc, status: 'waiting' }));
    await sim.until(finished);
    expect(sim.runsOf('paused').map((run) => run.atMs)).to.deep.equal([dateMs + 60_000]);
  });

  it('a task the user pauses during a run: the run finishes and is recorded, the task stays paused', async () => {
    const sim = new Simulation({ worker: { min_repeat_ms: 10 } });
    await sim.start();
    await sim.post({ _id: 'mid-run', job: { name: 'gated', arguments: [] }, repeat: { milliseconds: 20 } });
    await sim.until(sim.started('mid-run'));
    await sim.edit('mid-run', (doc) => ({ ...doc, status: 'paused' }));
    await sim.settle();
    sim.openGate('mid-run');
    await sim.advance(1_000);
    const doc = await sim.get('mid-run');
    expect(doc).to.deep.include({ status: 'paused', executions: 1, repetitions: 1 });
    expect(doc).not.to.have.property('lease');
    expect(sim.runsOf('mid-run')).to.have.length(1);
  });

  it('a user may set a finished task back to waiting to run it again', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'again' });
    await sim.until(sim.finished('again'));
    await sim.advance(1_000);
    await sim.edit('again', (doc) => ({ ...doc, status: 'waiting', date: iso(sim.now) }));
    await sim.until(sim.finished('again'));
    expect(await sim.get('again')).to.deep.include({ status: 'done', executions: 2 });
  });
});

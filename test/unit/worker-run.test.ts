/**
 * One worker instance on the in-memory store, fake clock: claiming and running a task, holding
 * one due later, and never starting a job before its date.
 */
import { expect } from 'chai';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

describe('worker (in memory): claim and run', () => {
  closeSimulationsAfterEach();

  it('runs a task that was overdue when the worker started, and records the run', async () => {
    const sim = new Simulation();
    await sim.post({ _id: 'overdue', date: iso(START_MS - 3_600_000) });
    const finished = sim.finished('overdue');
    const a = await sim.start();
    expect(await sim.until(finished)).to.deep.include({ label: 'a' });

    const doc = await sim.get('overdue');
    expect(doc.status).to.equal('done');
    expect(doc.executions).to.equal(1);
    expect(doc.result).to.deep.equal({ ran: 'overdue', by: 'a', at: iso(START_MS) });
    expect(doc).not.to.have.property('lease');
    expect(doc).not.to.have.property('error');
    expect(doc.last_run).to.deep.include({ started_at: iso(START_MS), worker: 'nightly', instance: a.worker.instance });
    expect(sim.runsOf('overdue')).to.have.length(1);
  });

  it('runs a task created while it runs, at once when it is due', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.advance(5_000);
    const finished = sim.finished('new');
    await sim.post({ _id: 'new' });
    await sim.until(finished);
    expect((await sim.get('new')).status).to.equal('done');
    expect(sim.runsOf('new').map((run) => run.atMs)).to.deep.equal([START_MS + 5_000]);
  });

  it('holds a task due later as scheduled, with its lease until the date plus the claim grace, and starts it at its date, never before', async () => {
    const sim = new Simulation({ worker: { claim_grace_ms: 3_000 } });
    const a = await sim.start();
    const dateMs = START_MS + 60_000;
    const scheduled = sim.next('task:scheduled', (e) => e.id === 'later');
    await sim.post({ _id: 'later', date: iso(dateMs) });
    await sim.until(scheduled);

    const held = await sim.get('later');
    expect(held.status).to.equal('scheduled');
    expect(held.lease).to.deep.equal({ instance: a.worker.instance, expires_at: iso(dateMs + 3_000) });

    await sim.advanceTo(dateMs - 1);
    expect(sim.runsOf('later'), 'no start before the date').to.have.length(0);
    const started = sim.started('later');
    const finished = sim.finished('later');
    await sim.until(started);
    expect(sim.runsOf('later').map((run) => run.atMs)).to.deep.equal([dateMs]);
    expect((await sim.until(finished)).payload.status).to.equal('done');
    const doc = await sim.get('later');
    expect(doc.last_run?.started_at).to.equal(iso(dateMs));
    expect(doc).not.to.have.property('lease');
  });

  it('claims a task due within the second without a scheduled write, and still starts it exactly at its date', async () => {
    const sim = new Simulation();
    await sim.start();
    const dateMs = START_MS + 700;
    await sim.post({ _id: 'soon', date: iso(dateMs) });
    await sim.settle();
    expect((await sim.get('soon')).status, 'no scheduled write for a hold this short').to.equal('waiting');
    await sim.advanceTo(dateMs - 1);
    expect(sim.runsOf('soon')).to.have.length(0);
    await sim.until(sim.finished('soon'));
    expect(sim.runsOf('soon').map((run) => run.atMs)).to.deep.equal([dateMs]);
  });

  for (const latencyMs of [0, 40, 300]) {
    it(`never starts a job before its date, the database answering in ${latencyMs} ms`, async () => {
      const sim = new Simulation({ latencyMs });
      await sim.start();
      const offsets = [-5_000, 0, 1, 120, 249, 250, 251, 999, 1_000, 1_001, 1_500, 2_750, 30_000, 59_999];
      for (const [i, offset] of offsets.entries()) await sim.post({ _id: `d${i}`, date: iso(sim.now + offset) });
      const ids = offsets.map((_, i) => `d${i}`);
      await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.status === 'done'));
      for (const run of sim.runs) expect(run.atMs, `${run.id} not early`).to.be.at.least(Date.parse(String(run.doc.date)));
      expect(sim.runs.map((run) => run.id).sort()).to.deep.equal([...ids].sort());
      if (latencyMs < 250) {
        // The claim is written ahead of the date: a task known a while before starts on the dot.
        const known = sim.runs.filter((run) => Date.parse(String(run.doc.date)) - START_MS >= 2_000);
        expect(known.map((run) => run.atMs - Date.parse(String(run.doc.date)))).to.deep.equal(known.map(() => 0));
      }
    });
  }

  it('leaves a task beyond the horizon in the database until its window comes', async () => {
    const sim = new Simulation({ worker: { horizon_ms: 60_000 } });
    await sim.start();
    const dateMs = START_MS + 10 * 60_000;
    await sim.post({ _id: 'far', date: iso(dateMs) });
    await sim.advance(60_000);
    expect((await sim.get('far')).status).to.equal('waiting');
    await sim.until(sim.finished('far'));
    expect(sim.runsOf('far').map((run) => run.atMs)).to.deep.equal([dateMs]);
  });

  it('records a failure without retry as error with the message and code', async () => {
    const sim = new Simulation();
    await sim.start();
    const finished = sim.finished('broken');
    await sim.post({ _id: 'broken', job: { name: 'fails', arguments: [] } });
    expect((await sim.until(finished)).payload.status).to.equal('error');
    const doc = await sim.get('broken');
    expect(doc.error).to.deep.equal({ message: 'boom', code: 'E_BOOM' });
    expect(doc.executions).to.equal(1);
  });

  it('writes error naming the job for a task whose job does not exist, and never runs it', async () => {
    const sim = new Simulation();
    await sim.start();
    const invalid = sim.next('task:invalid', (e) => e.id === 'nojob');
    await sim.post({ _id: 'nojob', job: { name: 'no_such_job', arguments: [] } });
    await sim.until(invalid);
    const doc = await sim.get('nojob');
    expect(doc.status).to.equal('error');
    expect(doc.error?.code).to.equal('E_TASK_INVALID');
    expect(doc.error?.message).to.match(/^job\.name: /);
    expect(sim.runs).to.have.length(0);
  });

  it('runs at most `concurrency` jobs at once, the rest as slots free up', async () => {
    const sim = new Simulation();
    await sim.start({ concurrency: 2 });
    for (let i = 1; i <= 5; i++) await sim.post({ _id: `w${i}`, job: { name: 'waits', arguments: [] }, data: { ms: 1000 } });
    await sim.until(async () => (await Promise.all(['w1', 'w2', 'w3', 'w4', 'w5'].map((id) => sim.get(id)))).every((d) => d.status === 'done'));
    const starts = sim.runs.map((run) => run.atMs - START_MS);
    expect(starts).to.deep.equal([0, 0, 1000, 1000, 2000]);
  });

  it('while runs end fast, claims the next wave ahead of the slots: it starts the moment a slot is free, never more than `concurrency` jobs at once', async () => {
    const sim = new Simulation();
    await sim.start({ concurrency: 2 });
    const ids = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'];
    for (const id of ids) await sim.post({ _id: id, job: { name: 'waits', arguments: [] }, data: { ms: 100 } });
    const startedAt = (id: string): number => sim.runsOf(id)[0]!.atMs - START_MS;
    await sim.advanceTo(START_MS + 150);
    expect(sim.runsOf('s4')).to.have.length(0);
    // The third wave is claimed (the database shows it running, with this instance's lease)
    // while the second runs.
    expect((await sim.get('s4')).status).to.equal('running');
    await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.status === 'done'));
    expect(ids.map(startedAt)).to.deep.equal([0, 0, 100, 100, 200, 200, 300, 300]);
    const claimedAt = (id: string): number => sim.events.find((e) => e.name === 'task:claimed' && e.payload.id === id)!.atMs - START_MS;
    // The first wave is claimed into free slots; once runs have ended, each wave a wave ahead.
    expect(ids.map(claimedAt)).to.deep.equal([0, 0, 100, 100, 100, 100, 200, 200]);
  });

  /**
   * One run slot: a short run ends, then `b-long` (60 s) takes the slot and `c-next` is claimed
   * ahead of it (a run just ended), waiting for the slot. Resolves once `c-next` is claimed.
   */
  async function claimAheadBehindLongRun(sim: Simulation): Promise<void> {
    await sim.start({ concurrency: 1 });
    await sim.post({ _id: 'a-short', job: { name: 'waits', arguments: [] }, data: { ms: 10 } });
    await sim.until(async () => (await sim.get('a-short')).status === 'done');
    await sim.post({ _id: 'b-long', job: { name: 'waits', arguments: [] }, data: { ms: 60_000 } });
    await sim.post({ _id: 'c-next', job: { name: 'waits', arguments: [] }, data: { ms: 10 } });
    await sim.until(sim.next('task:claimed', (e) => e.id === 'c-next'));
  }

  it('a run claimed ahead that finds no free slot in time is handed back, and runs once a slot is free', async () => {
    const sim = new Simulation();
    const handedBack = sim.next('task:handed-back', (e) => e.id === 'c-next');
    await claimAheadBehindLongRun(sim);
    const claimedMs = sim.now;
    await sim.until(handedBack);
    expect(sim.now - claimedMs, 'waited for a slot 5 s (a third of the lease at most)').to.equal(5_000);
    const back = await sim.get('c-next');
    expect(back.status).to.equal('waiting');
    expect(back).not.to.have.property('lease');
    expect(sim.runsOf('c-next')).to.have.length(0);
    await sim.until(async () => (await sim.get('c-next')).status === 'done');
    expect(sim.runsOf('c-next').map((run) => run.atMs)).to.deep.equal([sim.runsOf('b-long')[0]!.atMs + 60_000]);
  });

  const cancels: Array<[string, (sim: Simulation) => Promise<unknown>]> = [
    ['a cancel written on the task', (sim) => sim.edit('c-next', (doc) => ({ ...doc, status: 'cancel' }))],
    ['a cancel request (request:)', (sim) => sim.store.control.put({ _id: 'request:c-next:cancel-1', worker: 'nightly', task: 'c-next', action: 'cancel' })],
  ];
  for (const [how, cancel] of cancels) {
    it(`a run claimed ahead that waits for its slot gives way at once to ${how}: canceled without a run, the slot's wait not served out`, async () => {
      const sim = new Simulation();
      await claimAheadBehindLongRun(sim);
      await sim.advance(1_000);
      const canceledAtMs = sim.now;
      await cancel(sim);
      await sim.until(async () => (await sim.get('c-next')).status === 'canceled');
      expect(sim.now - canceledAtMs, 'no wait for the slot (5 s) first').to.be.below(1_000);
      expect(sim.runsOf('c-next')).to.have.length(0);
      expect((await sim.get('b-long')).status).to.equal('running');
    });
  }
});

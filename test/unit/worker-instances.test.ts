/**
 * Two instances of one worker name in one process, on one database: they split the due tasks
 * by the rendezvous share, back each other up after the claim grace, and take over the run of an
 * instance that died once its lease has expired.
 */
import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { rendezvousOwner } from '../../src/worker/peers/membership';
import { closeSimulationsAfterEach, iso, Simulation, type SimWorker, type TestJob } from '../helpers/memory-worker';

/** `count` task ids whose share is `owner`'s among the live instances. */
function idsOwnedBy(owner: SimWorker, prefix: string, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++) {
    const id = `${prefix}-${i}`;
    if (rendezvousOwner(owner.worker.liveInstances, id) === owner.worker.instance) ids.push(id);
  }
  return ids;
}

function idOwnedBy(owner: SimWorker, prefix: string): string {
  return idsOwnedBy(owner, prefix, 1)[0]!;
}

/** The first run hangs (its instance is about to die); any later run succeeds. */
function stallsOnce(): TestJob {
  let calls = 0;
  return (doc, ctx) => {
    calls += 1;
    if (calls > 1) return { ran: doc._id, by: ctx.label };
    return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
  };
}

async function allDone(sim: Simulation, ids: string[]): Promise<TaskDoc[]> {
  const docs = await Promise.all(ids.map((id) => sim.get(id)));
  return docs.every((doc) => doc.status === 'done') ? docs : [];
}

describe('worker (in memory): instances of one worker name', () => {
  closeSimulationsAfterEach();

  for (const latencyMs of [0, 10, 40]) {
    it(`split due tasks by their share: every task runs once, on its owner, with no claim lost (database answering in ${latencyMs} ms)`, async () => {
      const sim = new Simulation({ latencyMs });
      const [a, b] = await sim.startPair();
      const live = a.worker.liveInstances;
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await sim.post({ _id: `now-${i}`, date: iso(sim.now - 1_000) }))._id);
      for (let i = 0; i < 20; i++) ids.push((await sim.post({ _id: `later-${i}`, date: iso(sim.now + 30_000 + i * 100) }))._id);
      await sim.until(async () => (await allDone(sim, ids)).length > 0, { what: 'every task to be done' });

      const docs = await Promise.all(ids.map((id) => sim.get(id)));
      for (const doc of docs) {
        expect(sim.runsOf(doc._id), `${doc._id} ran once`).to.have.length(1);
        expect(doc.executions).to.equal(1);
        expect(doc.last_run?.instance, `${doc._id} ran on its owner`).to.equal(rendezvousOwner(live, doc._id));
      }
      const share = (w: SimWorker): number => ids.filter((id) => rendezvousOwner(live, id) === w.worker.instance).length;
      expect(sim.runs.filter((run) => run.worker === 'a')).to.have.length(share(a));
      expect(sim.runs.filter((run) => run.worker === 'b')).to.have.length(share(b));
      expect(share(a), 'each instance has a fair part').to.be.within(8, 32);
      const conflicts = sim.events.filter((e) => e.name === 'task:conflict');
      expect(conflicts, 'no claim lost to the other instance').to.deep.equal([]);
      expect(sim.runs.filter((run) => run.atMs < Date.parse(String(run.doc.date))), 'none started early').to.deep.equal([]);
    });
  }

  it("takes over an instance's due share when it does not claim it within the claim grace (its slots are full)", async () => {
    const sim = new Simulation({ worker: { claim_grace_ms: 2_000 } });
    const slowOnA: TestJob = (doc, ctx) => (ctx.label === 'a' ? ctx.sim.gate(doc._id, ctx.signal) : { by: ctx.label });
    const [a, b] = await sim.startPair({ concurrency: 1, jobs: { slow_on_a: slowOnA } }, { jobs: { slow_on_a: slowOnA } });
    const dateMs = sim.now;
    // Six tasks of each share (instance ids are random: the ids are picked to fit them).
    const sharesOfA = idsOwnedBy(a, 'a-share', 6);
    const ids = [...sharesOfA, ...idsOwnedBy(b, 'b-share', 6)];
    for (const id of ids) await sim.post({ _id: id, date: iso(dateMs), job: { name: 'slow_on_a', arguments: [] } });

    await sim.until(() => sim.runs.length === ids.length, { what: 'every task to start' });
    const onA = sim.runs.filter((run) => run.worker === 'a');
    expect(onA, 'a runs one task: its only slot stays busy').to.have.length(1);
    for (const id of sharesOfA.filter((id) => id !== onA[0]!.id)) {
      const [run] = sim.runsOf(id);
      expect(run?.worker, `${id} taken by b`).to.equal('b');
      expect(run!.atMs, `${id} taken only after the claim grace`).to.be.at.least(dateMs + 2_000);
    }
    for (const id of ids.filter((id) => !sharesOfA.includes(id))) {
      expect(sim.runsOf(id).map((run) => [run.worker, run.atMs])).to.deep.equal([['b', dateMs]]);
    }
    sim.openGate(onA[0]!.id);
    await sim.until(async () => (await allDone(sim, ids)).length > 0, { what: 'every task to be done' });
    for (const id of ids) expect(sim.runsOf(id), `${id} ran once`).to.have.length(1);
  });

  for (const latencyMs of [0, 10]) {
    it(`takes a run over once the lease of its dead instance expired, and runs it once (database answering in ${latencyMs} ms)`, async () => {
      const sim = new Simulation({ worker: { lease_ms: 6_000 }, latencyMs });
      const job = stallsOnce();
      const [a, b] = await sim.startPair({ jobs: { stalls_once: job } }, { jobs: { stalls_once: job } });
      const id = idOwnedBy(a, 'stall');
      await sim.post({ _id: id, job: { name: 'stalls_once', arguments: [] } });
      await sim.until(sim.started(id));
      expect(sim.runsOf(id).map((run) => run.worker)).to.deep.equal(['a']);

      await sim.advance(3_000);
      a.connection.kill();
      await sim.settle();
      const lastLease = (await sim.get(id)).lease!;
      expect(lastLease.instance).to.equal(a.worker.instance);
      const expiresMs = Date.parse(lastLease.expires_at);

      const finished = await sim.until(sim.finished(id), { withinMs: 60_000 });
      expect(finished.label).to.equal('b');
      const runs = sim.runsOf(id);
      expect(runs.map((run) => run.worker)).to.deep.equal(['a', 'b']);
      expect(runs[1]!.atMs, 'not before the lease expired').to.be.at.least(expiresMs);
      // a's instance document is still fresh (stale after 30 s): the expired run lease is the evidence.
      expect(runs[1]!.atMs, 'within a lease sweep of the expiry').to.be.at.most(expiresMs + 5_000);
      expect(b.worker.liveInstances).to.deep.equal([b.worker.instance]);

      const doc = await sim.get(id);
      expect(doc).to.deep.include({ status: 'done', executions: 1 });
      expect(doc.last_run?.instance).to.equal(b.worker.instance);
      expect(doc).not.to.have.property('lease');
      await sim.advance(120_000);
      expect(sim.runsOf(id), 'taken over once').to.have.length(2);
    });
  }

  it('runs a task an instance held (scheduled) when it died, after its date plus the claim grace', async () => {
    const sim = new Simulation({ worker: { claim_grace_ms: 2_000 } });
    const [a] = await sim.startPair();
    const id = idOwnedBy(a, 'held');
    const dateMs = sim.now + 60_000;
    await sim.post({ _id: id, date: iso(dateMs) });
    await sim.until(sim.next('task:scheduled', (e) => e.id === id));
    expect((await sim.get(id)).lease?.instance).to.equal(a.worker.instance);
    a.connection.kill();

    await sim.until(sim.finished(id), { withinMs: 120_000 });
    const [run] = sim.runsOf(id);
    expect(run?.worker).to.equal('b');
    expect(run!.atMs).to.be.at.least(dateMs + 2_000);
    expect(run!.atMs, 'within a lease sweep').to.be.at.most(dateMs + 2_000 + 5_000);
    expect(await sim.get(id)).to.deep.include({ status: 'done', executions: 1 });
  });

  it('a new instance joining takes its share of what is held, without running anything twice', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await sim.post({ _id: `j-${i}`, date: iso(sim.now + 60_000) }))._id);
    await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.status === 'scheduled'));
    const b = await sim.start();
    await sim.until(() => a.worker.liveInstances.length === 2 && b.worker.liveInstances.length === 2);
    await sim.until(async () => (await allDone(sim, ids)).length > 0, { what: 'every task to be done' });
    for (const id of ids) expect(sim.runsOf(id), `${id} ran once`).to.have.length(1);
    // a held them all with its lease before b came: a runs them (the holds stand).
    expect(new Set(sim.runs.map((run) => run.worker))).to.deep.equal(new Set(['a']));
  });
});

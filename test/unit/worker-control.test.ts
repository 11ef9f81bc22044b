/**
 * The control database as a worker instance obeys it: a `pause:<worker>` document, and a user's
 * `request:<task id>:...` document about one task (cancel, delete, reschedule, pause), carried
 * out by the instance that holds the task even when the task repeats every 20 ms.
 */
import { expect } from 'chai';
import type { RequestAction } from '../../src/store/schema';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

const pause = (sim: Simulation, worker = 'nightly'): Promise<void> => sim.pauseName(worker, { paused_at: iso(sim.now) });
const resume = (sim: Simulation, worker = 'nightly'): Promise<void> => sim.resumeName(worker);

describe('worker (in memory): pause', () => {
  closeSimulationsAfterEach();

  it('stops new runs at once, lets running ones finish, and resumes when the document is deleted', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'busy', job: { name: 'gated', arguments: [] } });
    await sim.until(sim.started('busy'));
    await sim.post({ _id: 'next', date: iso(START_MS + 500) });
    await sim.post({ _id: 'later', date: iso(START_MS + 10_000) });
    await sim.settle();

    await pause(sim);
    await sim.settle();
    expect(a.worker.paused).to.equal(true);
    sim.openGate('busy');
    await sim.advanceTo(START_MS + 60_000);
    expect((await sim.get('busy')).status, 'the run in progress finished').to.equal('done');
    expect(sim.runsOf('next'), 'due right after the pause: not started').to.have.length(0);
    expect(sim.runsOf('later')).to.have.length(0);
    expect((await sim.get('next')).status).to.equal('waiting');

    await resume(sim);
    await sim.until(async () => (await sim.get('next')).status === 'done' && (await sim.get('later')).status === 'done');
    expect(sim.runs.slice(1).map((run) => [run.id, run.atMs])).to.deep.equal([
      ['next', START_MS + 60_000],
      ['later', START_MS + 60_000],
    ]);
  });

  it('a repeat that missed several dates during the pause runs once on resume, then keeps its series', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'every2s', repeat: { seconds: 2 } });
    await sim.advanceTo(START_MS + 3_000);
    await pause(sim);
    await sim.advanceTo(START_MS + 13_000);
    const missed = (await sim.get('every2s')).executions;
    await resume(sim);
    await sim.advanceTo(START_MS + 14_500);
    expect(missed).to.equal(2);
    expect(sim.runsOf('every2s').map((run) => run.atMs - START_MS)).to.deep.equal([0, 2_000, 13_000, 14_000]);
    expect(await sim.get('every2s')).to.deep.include({ executions: 4, date: iso(START_MS + 16_000) });
  });

  it('a pause document of another worker name, or saying paused: false, pauses nothing', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await pause(sim, 'other');
    await sim.store.control.put({ _id: 'pause:nightly', paused: false });
    await sim.post({ _id: 'free' });
    await sim.until(sim.finished('free'), { withinMs: 1_000 });
    expect(a.worker.paused).to.equal(false);
  });
});

describe('worker (in memory): requests about a task', () => {
  closeSimulationsAfterEach();

  /** A task repeating every 20 ms, and the instance running it, a few runs in. */
  async function fastRepeat(latencyMs: number): Promise<{ sim: Simulation; id: string }> {
    const sim = new Simulation({ worker: { min_repeat_ms: 10 } });
    const a = await sim.start();
    a.connection.latencyMs = latencyMs;
    await sim.post({ _id: 'fast', repeat: { milliseconds: 20 } });
    await sim.until(() => sim.runsOf('fast').length >= 5);
    return { sim, id: 'fast' };
  }

  async function request(sim: Simulation, id: string, action: RequestAction, extra: Record<string, unknown> = {}): Promise<string> {
    const requestId = `request:${id}:${action}-1`;
    expect((await sim.store.control.put({ _id: requestId, worker: 'nightly', task: id, action, ...extra })).ok).to.equal(true);
    return requestId;
  }

  /** After the request is carried out: the request document is gone and no run starts any more. */
  async function expectNoMoreRuns(sim: Simulation, id: string): Promise<void> {
    const runs = sim.runsOf(id).length;
    await sim.advance(1_000);
    expect(sim.runsOf(id).length, 'no run after the request').to.equal(runs);
  }

  // The instance's own writes of the task (claim, result) are nearly always in flight: the
  // request must not lose the race against them, at any speed of the database.
  for (const latencyMs of [0, 3, 10, 25]) {
    describe(`a task repeating every 20 ms, the database answering in ${latencyMs} ms`, () => {
      it('cancel: the task ends canceled and the request document is removed', async () => {
        const { sim, id } = await fastRepeat(latencyMs);
        const requestId = await request(sim, id, 'cancel');
        await sim.until(async () => (await sim.get(id)).status === 'canceled', { withinMs: 1_000, what: 'the task to be canceled' });
        await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
        await expectNoMoreRuns(sim, id);
        expect(await sim.get(id)).not.to.have.property('lease');
      });

      it('delete: the task is deleted and the request document is removed', async () => {
        const { sim, id } = await fastRepeat(latencyMs);
        const requestId = await request(sim, id, 'delete');
        await sim.until(async () => (await sim.store.get(id)) === null, { withinMs: 1_000, what: 'the task to be deleted' });
        await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
        await expectNoMoreRuns(sim, id);
        expect(await sim.store.get(id)).to.equal(null);
      });

      it('pause: the task ends paused and the request document is removed', async () => {
        const { sim, id } = await fastRepeat(latencyMs);
        const requestId = await request(sim, id, 'pause');
        await sim.until(async () => (await sim.get(id)).status === 'paused', { withinMs: 1_000, what: 'the task to be paused' });
        await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
        await expectNoMoreRuns(sim, id);
      });

      it('reschedule: the next run is at the requested date, the series goes on from it, and the request document is removed', async () => {
        const { sim, id } = await fastRepeat(latencyMs);
        const dateMs = sim.now + 5_000;
        const requestId = await request(sim, id, 'reschedule', { date: iso(dateMs) });
        await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
        const before = sim.runsOf(id).length;
        await sim.advanceTo(dateMs - 1);
        expect(sim.runsOf(id).length, 'no run until the new date').to.equal(before);
        const finished = sim.finished(id);
        await sim.until(sim.started(id));
        expect(sim.now).to.equal(dateMs);
        expect((await sim.until(finished)).payload.date, 'the series goes on from the new date').to.equal(iso(dateMs + 20));
      });
    });
  }

  it('reschedule of a task claimed ahead of its date, not started yet: runs at the requested date only', async () => {
    const sim = new Simulation();
    await sim.start();
    const dateMs = START_MS + 10_000;
    await sim.post({ _id: 'claimed', date: iso(dateMs) });
    // The claim is written a little before the date so that the job starts at the date itself.
    await sim.advanceTo(dateMs - 100);
    expect((await sim.get('claimed')).status).to.equal('running');
    const requestId = await request(sim, 'claimed', 'reschedule', { date: iso(dateMs + 5_000) });
    await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
    await sim.until(sim.finished('claimed'));
    expect(sim.runsOf('claimed').map((run) => run.atMs - dateMs)).to.deep.equal([5_000]);
  });

  describe('while the task runs', () => {
    /** A task repeating every 20 ms whose current run waits for its gate. */
    async function runningRepeat(): Promise<{ sim: Simulation; id: string }> {
      const sim = new Simulation({ worker: { min_repeat_ms: 10 } });
      await sim.start();
      await sim.post({ _id: 'gated', job: { name: 'gated', arguments: [] }, repeat: { milliseconds: 20 } });
      await sim.until(sim.started('gated'));
      return { sim, id: 'gated' };
    }

    it('cancel aborts the run: canceled, request removed', async () => {
      const { sim, id } = await runningRepeat();
      const requestId = await request(sim, id, 'cancel');
      await sim.until(async () => (await sim.get(id)).status === 'canceled', { withinMs: 1_000, what: 'the task to be canceled' });
      expect(sim.runsOf(id)[0]!.signal.aborted).to.equal(true);
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      await expectNoMoreRuns(sim, id);
    });

    it('delete aborts the run: deleted, request removed', async () => {
      const { sim, id } = await runningRepeat();
      const requestId = await request(sim, id, 'delete');
      await sim.until(async () => (await sim.store.get(id)) === null, { withinMs: 1_000, what: 'the task to be deleted' });
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      await expectNoMoreRuns(sim, id);
      expect(await sim.store.get(id)).to.equal(null);
    });

    it('cancel after the job ended, while its result is on its way to the database: canceled all the same', async () => {
      const sim = new Simulation();
      const a = await sim.start();
      a.connection.latencyMs = 7;
      await sim.post({ _id: 'ending', repeat: { seconds: 10 } });
      // The job returns at once; its result reaches the database 7 ms later.
      await sim.until(sim.started('ending'));
      const requestId = await request(sim, 'ending', 'cancel');
      await sim.until(async () => (await sim.get('ending')).status === 'canceled', { withinMs: 1_000, what: 'the task to be canceled' });
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      await expectNoMoreRuns(sim, 'ending');
      await sim.advance(30_000);
      expect(sim.runsOf('ending')).to.have.length(1);
    });

    it('delete while the lease heartbeat of the run is on its way: deleted, request removed, never run again', async () => {
      const sim = new Simulation({ worker: { lease_ms: 3_000 } });
      const a = await sim.start();
      a.connection.latencyMs = 50;
      await sim.post({ _id: 'slowdb', job: { name: 'hangs', arguments: [] } });
      const { payload } = await sim.until(sim.started('slowdb'));
      const startedMs = sim.now;
      expect(payload.lateMs).to.be.at.least(0);
      // The heartbeat (every lease/3) leaves at +1000 ms and reaches the database at +1050 ms.
      await sim.advanceTo(startedMs + 1_010);
      const requestId = await request(sim, 'slowdb', 'delete');
      await sim.until(async () => (await sim.store.get('slowdb')) === null, { withinMs: 10_000, what: 'the task to be deleted' });
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      await sim.advance(60_000);
      expect(sim.runsOf('slowdb')).to.have.length(1);
    });

    it('pause lets the run finish and record its result, then the task stays paused', async () => {
      const { sim, id } = await runningRepeat();
      const requestId = await request(sim, id, 'pause');
      await sim.advance(1_000);
      expect(sim.runsOf(id)[0]!.signal.aborted, 'the job goes on').to.equal(false);
      sim.openGate(id);
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      expect(await sim.get(id)).to.deep.include({ status: 'paused', executions: 1, result: { gate: 'opened' } });
      await expectNoMoreRuns(sim, id);
    });

    it('reschedule lets the run finish, then the next run is at the requested date', async () => {
      const { sim, id } = await runningRepeat();
      const dateMs = sim.now + 5_000;
      const requestId = await request(sim, id, 'reschedule', { date: iso(dateMs) });
      await sim.settle();
      sim.openGate(id);
      await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
      await sim.advanceTo(dateMs - 1);
      expect(sim.runsOf(id), 'no run before the requested date').to.have.length(1);
      await sim.until(sim.started(id), { withinMs: 10_000 });
      expect(sim.runsOf(id).map((run) => run.atMs)).to.deep.equal([START_MS, dateMs]);
    });
  });

  it('a request about a task this instance does not hold is left to the instance that holds it', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'elsewhere', worker: 'daily', date: iso(START_MS + 60_000) });
    const requestId = `request:elsewhere:cancel-1`;
    await sim.store.control.put({ _id: requestId, worker: 'daily', task: 'elsewhere', action: 'cancel' });
    await sim.advance(1_000);
    expect(await sim.store.control.get(requestId), 'another worker name: untouched').not.to.equal(null);
    expect((await sim.get('elsewhere')).status).to.equal('waiting');
  });
});

/**
 * Steering a running schedule, as a worker instance carries it out on the fake clock: a pause
 * that comes after a claim written ahead of the date, a pause honoured by two instances, run
 * now (`run_now`), a task resumed while its run goes on, jobs that decide their next run, and a
 * reload of the jobs while a run goes on.
 */
import { expect } from 'chai';
import { registryFromFunctions } from '../../src/api';
import { rendezvousOwner } from '../../src/worker/peers/membership';
import { closeSimulationsAfterEach, iso, Simulation, START_MS } from '../helpers/memory-worker';

const pause = (sim: Simulation, worker = 'nightly'): Promise<void> => sim.pauseName(worker, { paused: true });
const resume = (sim: Simulation, worker = 'nightly'): Promise<void> => sim.resumeName(worker);

describe('worker (in memory): pausing a worker name', () => {
  closeSimulationsAfterEach();

  it('a task claimed ahead of its date when the pause comes does not start: it is handed back, and runs on resume', async () => {
    const sim = new Simulation();
    await sim.start();
    const dateMs = START_MS + 10_000;
    await sim.post({ _id: 'ahead', date: iso(dateMs) });
    // The claim is written 250 ms before the date, so that the job starts at the date itself.
    await sim.advanceTo(dateMs - 100);
    expect((await sim.get('ahead')).status, 'claimed ahead of its date').to.equal('running');
    await pause(sim);
    await sim.advanceTo(dateMs + 30_000);
    expect(sim.runsOf('ahead'), 'not started after the pause').to.have.length(0);
    const handedBack = await sim.get('ahead');
    expect(handedBack).to.deep.include({ status: 'waiting', date: iso(dateMs) });
    expect(handedBack).to.not.have.property('lease');
    expect(handedBack).to.not.have.property('executions');

    await resume(sim);
    await sim.until(sim.finished('ahead'));
    expect(sim.runsOf('ahead').map((run) => run.atMs)).to.deep.equal([dateMs + 30_000]);
    expect(await sim.get('ahead')).to.deep.include({ status: 'done', executions: 1 });
  });

  it('two instances honour one pause: nothing starts on either, each task runs once on resume', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    const b = await sim.start();
    await pause(sim);
    await sim.settle();
    expect([a.worker.paused, b.worker.paused]).to.deep.equal([true, true]);
    // Three tasks owned by each instance (instance ids are random: fixed task ids could all fall to one).
    const ids = tasksSplitBetween([a.worker.instance, b.worker.instance], 3);
    for (const [i, id] of ids.entries()) await sim.post({ _id: id, date: iso(START_MS + i * 1000) });
    await sim.advance(60_000);
    expect(sim.runs, 'no run while paused').to.have.length(0);

    await resume(sim);
    await sim.until(async () => (await Promise.all(ids.map((id) => sim.get(id)))).every((doc) => doc.status === 'done'));
    expect(sim.runs.map((run) => run.id).sort()).to.deep.equal([...ids].sort());
    expect(new Set(sim.runs.map((run) => run.worker)), 'both instances took part').to.deep.equal(new Set(['a', 'b']));
  });
});

describe('worker (in memory): run now', () => {
  closeSimulationsAfterEach();

  it('a repeating task runs one extra time now and keeps its next date', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'hourly', repeat: { hours: 1 } });
    await sim.until(sim.finished('hourly'));
    await sim.advanceTo(START_MS + 20 * 60_000);
    expect((await sim.get('hourly')).date).to.equal(iso(START_MS + 3_600_000));

    const finished = sim.finished('hourly');
    await sim.edit('hourly', (doc) => ({ ...doc, run_now: iso(sim.now) }));
    const extra = await sim.until(finished);
    expect(extra.payload).to.deep.include({ status: 'waiting', date: iso(START_MS + 3_600_000) });
    const afterExtra = await sim.get('hourly');
    expect(afterExtra).to.deep.include({ date: iso(START_MS + 3_600_000), executions: 2, repetitions: 1 });
    expect(afterExtra).to.not.have.property('run_now');

    await sim.until(sim.finished('hourly'), { withinMs: 3_600_000 });
    expect(sim.runsOf('hourly').map((run) => run.atMs - START_MS)).to.deep.equal([0, 20 * 60_000, 3_600_000]);
    expect(await sim.get('hourly')).to.deep.include({ date: iso(START_MS + 7_200_000), repetitions: 2, executions: 3 });
  });

  it('a repeating task this instance holds (scheduled) runs now, and again at its own date', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'held', date: iso(START_MS + 60_000), repeat: { minutes: 1 } });
    await sim.until(async () => (await sim.get('held')).status === 'scheduled');
    await sim.advanceTo(START_MS + 10_000);
    const finished = sim.finished('held');
    await sim.edit('held', (doc) => ({ ...doc, run_now: iso(sim.now) }));
    expect((await sim.until(finished)).payload).to.deep.include({ status: 'waiting', date: iso(START_MS + 60_000) });
    await sim.until(sim.finished('held'));
    expect(sim.runsOf('held').map((run) => run.atMs - START_MS)).to.deep.equal([10_000, 60_000]);
    expect(await sim.get('held')).to.deep.include({ executions: 2, repetitions: 1, date: iso(START_MS + 120_000) });
  });

  it('a one-shot task dated next year runs now, once', async () => {
    const sim = new Simulation();
    await sim.start();
    const nextYear = iso(START_MS + 365 * 86_400_000);
    await sim.post({ _id: 'yearly-report', date: nextYear });
    await sim.advance(5_000);
    const finished = sim.finished('yearly-report');
    await sim.edit('yearly-report', (doc) => ({ ...doc, run_now: iso(sim.now) }));
    await sim.until(finished);
    expect(await sim.get('yearly-report')).to.deep.include({ status: 'done', executions: 1, date: nextYear });
    await sim.advance(600_000);
    expect(sim.runsOf('yearly-report').map((run) => run.atMs - START_MS)).to.deep.equal([5_000]);
  });

  it('a run now written while no instance ran is found when one starts (its date is far beyond the window)', async () => {
    const sim = new Simulation();
    await sim.post({ _id: 'asked', date: iso(START_MS + 30 * 86_400_000), repeat: { days: 30 }, run_now: iso(START_MS) });
    await sim.start();
    await sim.until(sim.finished('asked'), { withinMs: 5_000 });
    expect(await sim.get('asked')).to.deep.include({ status: 'waiting', date: iso(START_MS + 30 * 86_400_000), executions: 1 });
  });

  it('a run-now request (the fallback when direct writes keep losing) is carried out by the task\'s owner', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.post({ _id: 'far', date: iso(START_MS + 86_400_000), repeat: { days: 1 } });
    await sim.settle();
    const requestId = 'request:far:run-now-1';
    await sim.store.control.put({ _id: requestId, worker: 'nightly', task: 'far', action: 'run-now', date: iso(sim.now) });
    await sim.until(sim.finished('far'), { withinMs: 5_000 });
    await sim.until(async () => (await sim.store.control.get(requestId)) === null, { withinMs: 1_000, what: 'the request to be removed' });
    expect(await sim.get('far')).to.deep.include({ status: 'waiting', date: iso(START_MS + 86_400_000), executions: 1 });
  });
});

describe('worker (in memory): a task resumed while its run goes on', () => {
  closeSimulationsAfterEach();

  it('paused, then set back to waiting before the run ends: the run goes on and records its outcome', async () => {
    const sim = new Simulation();
    await sim.start();
    await sim.start();
    await sim.post({ _id: 'long', job: { name: 'gated', arguments: [] }, repeat: { hours: 1 } });
    await sim.until(sim.started('long'));
    await sim.edit('long', (doc) => ({ ...doc, status: 'paused' }));
    await sim.advance(1_000);
    // What `after task resume` writes: waiting, everything else (the run's lease) as it is.
    await sim.edit('long', (doc) => ({ ...doc, status: 'waiting' }));
    await sim.advance(15_000);
    expect(sim.runsOf('long'), 'no second run meanwhile').to.have.length(1);
    expect(sim.runsOf('long')[0]!.signal.aborted, 'the run goes on').to.equal(false);
    sim.openGate('long');
    await sim.until(sim.finished('long'));
    expect(await sim.get('long')).to.deep.include({ status: 'waiting', executions: 1, date: iso(START_MS + 3_600_000), result: { gate: 'opened' } });
    await sim.advance(60_000);
    expect(sim.runsOf('long')).to.have.length(1);
  });
});

describe('worker (in memory): jobs that decide their next run', () => {
  closeSimulationsAfterEach();

  it('later: runs again after the delay the job gave; ten runs, then done (Periodic style)', async () => {
    const sim = new Simulation();
    await sim.start({ jobs: { tenTimes: (_doc, ctx) => (ctx.runs < 10 ? ctx.later('30s', { run: ctx.runs }) : { finished: ctx.runs }) } });
    await sim.post({ _id: 'periodic', job: { name: 'tenTimes', arguments: [] } });
    await sim.until(async () => (await sim.get('periodic')).status === 'done');
    expect(sim.runsOf('periodic').map((run) => (run.atMs - START_MS) / 1000)).to.deep.equal([0, 30, 60, 90, 120, 150, 180, 210, 240, 270]);
    expect(await sim.get('periodic')).to.deep.include({ status: 'done', executions: 10, result: { finished: 10 } });
  });

  it('later, whatever the repeat says: a daily task asks to run again in a minute, then its series goes on', async () => {
    const sim = new Simulation();
    await sim.start({ jobs: { catchUp: (_doc, ctx) => (ctx.runs === 1 ? ctx.later('1m') : 'caught up') } });
    await sim.post({ _id: 'daily', job: { name: 'catchUp', arguments: [] }, repeat: { days: 1 } });
    await sim.until(async () => (await sim.get('daily')).executions === 2);
    expect(sim.runsOf('daily').map((run) => run.atMs - START_MS)).to.deep.equal([0, 60_000]);
    expect(await sim.get('daily')).to.deep.include({ status: 'waiting', date: iso(START_MS + 86_400_000), repetitions: 1, result: 'caught up' });
  });

  it('retry: retried after the delay with no retry policy, counted in retries', async () => {
    const sim = new Simulation();
    await sim.start({ jobs: { flaky: (_doc, ctx) => (ctx.runs < 3 ? ctx.retry('1m', `attempt ${ctx.runs}`) : { ok: true }) } });
    await sim.post({ _id: 'flaky', job: { name: 'flaky', arguments: [] } });
    const first = await sim.until(sim.finished('flaky'));
    expect(first.payload).to.deep.include({ status: 'waiting', date: iso(START_MS + 60_000), error: 'attempt 1', outcome: 'retry' });
    expect(await sim.get('flaky')).to.deep.include({ retries: 1, executions: 1, error: { message: 'attempt 1', code: 'E_RETRY' } });
    await sim.until(async () => (await sim.get('flaky')).status === 'done');
    expect(sim.runsOf('flaky').map((run) => run.atMs - START_MS)).to.deep.equal([0, 60_000, 120_000]);
    expect(await sim.get('flaky')).to.deep.include({ executions: 3, retries: 0, result: { ok: true } });
  });

  it('release: handed back and run again later; no run and no failure counted', async () => {
    const sim = new Simulation();
    let calls = 0;
    await sim.start({ jobs: { busy: (_doc, ctx) => (++calls < 3 ? ctx.release(5_000) : 'done at last') } });
    await sim.post({ _id: 'busy', job: { name: 'busy', arguments: [] } });
    const first = await sim.until(sim.finished('busy'));
    expect(first.payload).to.deep.include({ status: 'waiting', outcome: 'release' });
    const released = await sim.get('busy');
    expect(released).to.deep.include({ date: iso(START_MS + 5_000) });
    expect(released).to.not.have.property('executions');
    expect(released).to.not.have.property('last_run');
    await sim.until(async () => (await sim.get('busy')).status === 'done');
    expect(sim.runsOf('busy').map((run) => run.atMs - START_MS)).to.deep.equal([0, 5_000, 10_000]);
    expect(await sim.get('busy')).to.deep.include({ executions: 1, result: 'done at last' });
  });

  it('a bad delay fails the run with a reason', async () => {
    const sim = new Simulation();
    await sim.start({ jobs: { confused: (_doc, ctx) => ctx.later('whenever') } });
    await sim.post({ _id: 'confused', job: { name: 'confused', arguments: [] } });
    await sim.until(sim.finished('confused'));
    const doc = await sim.get('confused');
    expect(doc.status).to.equal('error');
    expect(doc.error?.code).to.equal('E_RUN_AGAIN');
    expect(doc.error?.message).to.match(/"whenever"/);
  });
});

describe('worker (in memory): reload', () => {
  closeSimulationsAfterEach();

  it('new job code from the next run on; the run in progress finishes with the code it started with', async () => {
    const sim = new Simulation();
    const a = await sim.start({ jobs: { version: async (doc, ctx) => (await ctx.sim.gate(doc._id, ctx.signal), 'v1') } });
    await sim.post({ _id: 'ticking', job: { name: 'version', arguments: [] }, repeat: { minutes: 1 } });
    await sim.until(sim.started('ticking'));
    a.worker.reload({ jobs: registryFromFunctions({ version: () => 'v2' }, sim.config) });
    sim.openGate('ticking');
    await sim.until(sim.finished('ticking'));
    expect((await sim.get('ticking')).result, 'the run in progress').to.equal('v1');
    await sim.advanceTo(START_MS + 61_000);
    expect(await sim.get('ticking')).to.deep.include({ result: 'v2', executions: 2 });
  });

  it('a held task whose job the reload took away gets its verdict', async () => {
    const sim = new Simulation();
    const a = await sim.start();
    await sim.post({ _id: 'orphan', date: iso(START_MS + 30_000) });
    await sim.settle();
    a.worker.reload({ jobs: registryFromFunctions({}, sim.config) });
    await sim.advance(60_000);
    const doc = await sim.get('orphan');
    expect(doc.status).to.equal('error');
    expect(doc.error?.message).to.match(/unknown job "succeeds"/);
  });
});

/** `perInstance` task ids owned by each of `instances`, by the workers' own rendezvous hashing. */
function tasksSplitBetween(instances: string[], perInstance: number): string[] {
  const ids: string[] = [];
  const owned = new Map(instances.map((instance) => [instance, 0]));
  for (let n = 1; ids.length < perInstance * instances.length; n++) {
    const owner = rendezvousOwner(instances, `p${n}`);
    if (owned.get(owner)! === perInstance) continue;
    owned.set(owner, owned.get(owner)! + 1);
    ids.push(`p${n}`);
  }
  return ids;
}

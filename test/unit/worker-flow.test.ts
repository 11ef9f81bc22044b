/**
 * Flow control in the worker (issue 15), in memory with a fake clock: priorities when more
 * tasks are due than free slots, rate and concurrency limits shared by instances, jittered
 * repeats computed alike by every instance, and tasks that wait for other tasks.
 */
import { expect } from 'chai';
import { jitterOffsetMs } from '../../src/task/series';
import type { TaskDoc } from '../../src/types';
import { WINDOW_MARGIN_MS } from '../../src/worker/timing/limiter';
import { closeSimulationsAfterEach, iso, START_MS, Simulation } from '../helpers/memory-worker';
import { mostInAnyWindow } from '../helpers/run-stats';

async function statuses(sim: Simulation, ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => String((await sim.get(id)).status)));
}

/** Priorities for 20 tasks: shuffled, with ties (0 thrice, 5 twice...). */
const PRIORITIES = [3, 0, 7, -2, 5, 0, 9, 1, 5, -2, 4, 0, 8, 2, 6, 10, -5, 3, 1, 7];

/** The order a worker must start them in: priority desc, then date, then id (created in order). */
function expectedOrder(tasks: Array<{ id: string; priority: number; dateMs: number }>): string[] {
  return [...tasks].sort((a, b) => b.priority - a.priority || a.dateMs - b.dateMs || Number(a.id.slice(1)) - Number(b.id.slice(1))).map((t) => t.id);
}

describe('worker (in memory): flow control', () => {
  closeSimulationsAfterEach();

  describe('priority', () => {
    it('concurrency 1, 20 tasks due at once: higher priority first, date order within one priority, never early', async () => {
      const sim = new Simulation();
      await sim.start({ concurrency: 1 });
      const dueMs = sim.now + 5_000;
      const tasks = PRIORITIES.map((priority, k) => ({ id: `p${k}`, priority, dateMs: dueMs - (k % 3) * 100 }));
      for (const t of tasks) await sim.post({ _id: t.id, priority: t.priority, date: iso(t.dateMs), job: { name: 'waits', arguments: [] }, data: { ms: 50 } });
      await sim.until(async () => (await statuses(sim, tasks.map((t) => t.id))).every((s) => s === 'done'), { what: 'all 20 to be done' });
      // The first due ones start as their second comes; once several wait for the one slot, priority decides.
      const started = sim.runs.map((run) => run.id);
      expect(started).to.have.length(20);
      const dateOf = new Map(tasks.map((t) => [t.id, t.dateMs]));
      for (const run of sim.runs) expect(run.atMs, `${run.id} early`).to.be.at.least(dateOf.get(run.id)!);
      // Everything after the first start waited for the slot with all 20 due: strict order.
      const firstOne = started[0]!;
      expect(started.slice(1)).to.deep.equal(expectedOrder(tasks.filter((t) => t.id !== firstOne)));
    });

    it('tasks found overdue at start run in priority order', async () => {
      const sim = new Simulation();
      const tasks = PRIORITIES.map((priority, k) => ({ id: `o${k}`, priority, dateMs: START_MS - 60_000 + k * 1_000 }));
      for (const t of tasks) await sim.post({ _id: t.id, priority: t.priority, date: iso(t.dateMs) });
      await sim.start({ concurrency: 1 });
      await sim.until(async () => (await statuses(sim, tasks.map((t) => t.id))).every((s) => s === 'done'), { what: 'all 20 to be done' });
      expect(sim.runs.map((run) => run.id)).to.deep.equal(expectedOrder(tasks));
    });

    it('two instances: each takes its own share in priority order', async () => {
      const sim = new Simulation();
      const [a, b] = await sim.startPair({ concurrency: 1 });
      const dueMs = sim.now + 5_000;
      const tasks = PRIORITIES.map((priority, k) => ({ id: `s${k}`, priority, dateMs: dueMs }));
      for (const t of tasks) await sim.post({ _id: t.id, priority: t.priority, date: iso(t.dateMs), job: { name: 'waits', arguments: [] }, data: { ms: 20 } });
      await sim.until(async () => (await statuses(sim, tasks.map((t) => t.id))).every((s) => s === 'done'), { what: 'all 20 to be done' });
      for (const w of [a, b]) {
        const mine = sim.runs.filter((run) => run.worker === w.label).map((run) => run.id);
        expect(mine.length, `instance ${w.label} ran some`).to.be.above(0);
        expect(mine.slice(1)).to.deep.equal(expectedOrder(tasks.filter((t) => mine.slice(1).includes(t.id))));
      }
    });
  });

  describe('rate and concurrency limits', () => {
    it('5/s over two instances, 40 tasks due at once: never more than 5 starts in any second, all run', async () => {
      const sim = new Simulation({ limits: { nightly: { rate: '5/s' } } });
      const [a, b] = await sim.startPair();
      // Both instances use their shares (3 and 2) once the newer one has been seen for a window.
      await sim.advance(5_000);
      const firstDate = sim.now + 1_000;
      const ids: string[] = [];
      for (let k = 0; k < 40; k++) ids.push((await sim.post({ _id: `r${k}`, date: iso(firstDate) }))._id);
      await sim.until(async () => (await statuses(sim, ids)).every((s) => s === 'done'), { what: 'all 40 to be done' });
      const starts = sim.runs.map((run) => run.atMs);
      expect(starts).to.have.length(40);
      expect(mostInAnyWindow(starts, 1000)).to.be.at.most(5);
      for (const w of [a, b]) {
        const own = sim.runs.filter((run) => run.worker === w.label).map((run) => run.atMs);
        expect(mostInAnyWindow(own, 1000 + WINDOW_MARGIN_MS - 1), `instance ${w.label}`).to.be.at.most(3);
      }
      // 40 at 5/s: about 8 s, not much more.
      expect(Math.max(...starts) - firstDate).to.be.below(9_000);
      const throttled = sim.events.filter((e) => e.name === 'task:throttled');
      expect(throttled.length).to.be.above(20);
      expect(throttled[0]!.payload).to.include({ limit: 'nightly' });
    });

    it('a job limit holds back that job only: a task of another job behind it starts', async () => {
      const sim = new Simulation({ limits: { 'nightly/gated': { concurrency: 2 } } });
      await sim.start({ concurrency: 10 });
      const gated: string[] = [];
      for (let k = 0; k < 5; k++) gated.push((await sim.post({ _id: `g${k}`, job: { name: 'gated', arguments: [] }, priority: 5 }))._id);
      await sim.until(() => sim.runs.length === 2, { what: 'two gated runs' });
      const other = await sim.post({ _id: 'other', priority: 0 });
      await sim.until(async () => (await sim.get(other._id)).status === 'done', { what: 'the other job to run' });
      expect(sim.runs.filter((run) => run.job === 'gated')).to.have.length(2);
      // Each gate opened lets one more gated run start: never more than 2 at once.
      let opened = 0;
      for (const id of gated) {
        sim.openGate(id);
        opened++;
        await sim.until(async () => (await sim.get(id)).status === 'done', { what: `${id} done` });
        await sim.settle();
        expect(sim.runs.filter((run) => run.job === 'gated').length).to.be.at.most(opened + 2);
      }
      expect(await statuses(sim, gated)).to.deep.equal(gated.map(() => 'done'));
      expect(a2(sim.events.find((e) => e.name === 'task:throttled')?.payload)).to.include({ limit: 'nightly/gated' });
    });

    it('an instance that stops gives its share back: the other takes the whole rate a window later', async () => {
      const sim = new Simulation({ limits: { nightly: { rate: '4/s' } } });
      const [a, b] = await sim.startPair();
      await sim.advance(5_000);
      await b.stop();
      await sim.until(() => a.worker.liveInstances.length === 1, { what: 'the stop to be seen' });
      await sim.advance(2_000);
      const firstDate = sim.now + 1_000;
      const ids: string[] = [];
      for (let k = 0; k < 12; k++) ids.push((await sim.post({ _id: `t${k}`, date: iso(firstDate) }))._id);
      await sim.until(async () => (await statuses(sim, ids)).every((s) => s === 'done'), { what: 'all 12 to be done' });
      const starts = sim.runs.map((run) => run.atMs);
      expect(mostInAnyWindow(starts, 1000)).to.equal(4);
      expect(Math.max(...starts) - firstDate).to.be.below(3_100);
    });
  });

  describe('jitter', () => {
    it('the dates a jittered repeat leads to are the same whichever instance runs it', async () => {
      const sim = new Simulation();
      const [a, b] = await sim.startPair();
      const first = START_MS + 60_000;
      await sim.post({ _id: 'jittered', date: iso(first), repeat: { minutes: 1, jitter: '20s', limit: 6 } });
      const series = (k: number): number => first + k * 60_000;
      const expected = [iso(first), ...[1, 2, 3, 4, 5].map((k) => iso(series(k) + jitterOffsetMs('jittered', series(k), 20_000)))];
      await sim.until(() => sim.runs.length === 3, { what: 'three runs' });
      // The instance that ran it stops: the other goes on with the series.
      const ranIt = [a, b].find((w) => w.label === sim.runs[0]!.worker)!;
      await ranIt.stop();
      await sim.until(async () => (await sim.get('jittered')).status === 'done', { what: 'the series to end' });
      const runs = sim.runs.filter((run) => run.id === 'jittered');
      expect(new Set(runs.map((run) => run.worker)).size).to.equal(2);
      expect(runs.map((run) => iso(run.atMs))).to.deep.equal(expected);
    });
  });

  describe('dependencies', () => {
    it('a chain: each runs only once the one before is done, woken through the feed', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'extract', job: { name: 'waits', arguments: [] }, data: { ms: 5_000 } });
      await sim.post({ _id: 'transform', after: ['extract'] });
      await sim.post({ _id: 'load', after: ['transform'], date: iso(sim.now + 2_000) });
      await sim.until(async () => (await sim.get('load')).status === 'done', { what: 'the chain to finish' });
      const order = sim.runs.map((run) => run.id);
      expect(order).to.deep.equal(['extract', 'transform', 'load']);
      const finishedAt = (id: string): number => sim.events.find((e) => e.name === 'task:finished' && e.payload.id === id)!.atMs;
      const startedAt = (id: string): number => sim.runs.find((run) => run.id === id)!.atMs;
      // No polling: the next one starts within a second of the one before (the window query
      // comes every 30 s).
      expect(startedAt('transform') - finishedAt('extract')).to.be.below(1_000);
      expect(startedAt('load') - finishedAt('transform')).to.be.below(1_000);
      expect(startedAt('load')).to.be.at.least(START_MS + 2_000);
    });

    it('fan-in: a task waits for all it names, then runs at its date', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'import', job: { name: 'gated', arguments: [] } });
      await sim.post({ _id: 'fx-rates', job: { name: 'gated', arguments: [] } });
      const reportDate = sim.now + 30_000;
      await sim.post({ _id: 'report', after: ['import', 'fx-rates'], date: iso(reportDate) });
      await sim.until(() => sim.runs.length === 2, { what: 'the two imports to start' });
      sim.openGate('import');
      await sim.until(async () => (await sim.get('import')).status === 'done', { what: 'import done' });
      await sim.advance(40_000);
      expect(sim.runsOf('report')).to.have.length(0);
      sim.openGate('fx-rates');
      await sim.until(async () => (await sim.get('report')).status === 'done', { what: 'report done' });
      expect(sim.runsOf('report')[0]!.atMs - sim.events.find((e) => e.name === 'task:finished' && e.payload.id === 'fx-rates')!.atMs).to.be.below(1_000);
      // Date passed meanwhile: at once. With a later date it would have waited for it.
      expect(sim.runsOf('report')[0]!.atMs).to.be.above(reportDate);
    });

    it('a failed dependency: error naming it; with after_failure "run" it runs anyway', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'import', job: { name: 'fails', arguments: [] } });
      await sim.post({ _id: 'report', after: ['import'] });
      await sim.post({ _id: 'cleanup', after: ['import'], after_failure: 'run' });
      await sim.until(async () => (await statuses(sim, ['report', 'cleanup'])).every((s) => s === 'error' || s === 'done'), { what: 'both to end' });
      const report = await sim.get('report');
      expect(report.status).to.equal('error');
      expect(report.error).to.deep.include({ code: 'E_DEPENDENCY' });
      expect(report.error!.message).to.match(/^after: task "import" ended error/);
      expect(sim.runsOf('report')).to.have.length(0);
      expect((await sim.get('cleanup')).status).to.equal('done');
    });

    it('a canceled dependency fails its dependents the same way', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'import', date: iso(sim.now + 60_000) });
      await sim.post({ _id: 'report', after: ['import'] });
      await sim.advance(1_000);
      await sim.edit('import', (doc) => ({ ...doc, status: 'cancel' }));
      await sim.until(async () => (await sim.get('report')).status === 'error', { what: 'report error' });
      expect((await sim.get('report')).error!.message).to.match(/"import" ended canceled/);
    });

    it('a cycle: both tasks go to error naming the chain, neither runs', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'a', after: ['b'] });
      await sim.post({ _id: 'b', after: ['a'] });
      await sim.until(async () => (await statuses(sim, ['a', 'b'])).every((s) => s === 'error'), { what: 'both to be error' });
      expect((await sim.get('a')).error!.message).to.match(/^after: waits for itself through "a" → "b" → "a"/);
      expect(sim.runs).to.have.length(0);
    });

    it('a missing id, and a repeating dependency: error, whatever after_failure says', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'hourly', repeat: { hours: 1 }, date: iso(sim.now + 600_000) });
      await sim.post({ _id: 'orphan', after: ['no-such-task'], after_failure: 'run' });
      await sim.post({ _id: 'follower', after: ['hourly'] });
      await sim.until(async () => (await statuses(sim, ['orphan', 'follower'])).every((s) => s === 'error'), { what: 'both to be error' });
      expect((await sim.get('orphan')).error!.message).to.match(/^after: task "no-such-task" does not exist/);
      expect((await sim.get('follower')).error!.message).to.match(/"hourly" repeats/);
    });

    it('a dependency created a moment after its dependent is waited for, not reported missing', async () => {
      const sim = new Simulation();
      await sim.start();
      await sim.post({ _id: 'report', after: ['late-import'] });
      await sim.advance(300);
      await sim.post({ _id: 'late-import' });
      await sim.until(async () => (await sim.get('report')).status === 'done', { what: 'report done' });
      expect(sim.runs.map((run) => run.id)).to.deep.equal(['late-import', 'report']);
    });

    it('two instances: the dependent runs once, whichever instance owns it', async () => {
      const sim = new Simulation();
      await sim.startPair();
      const ids: string[] = [];
      for (let k = 0; k < 6; k++) {
        await sim.post({ _id: `dep-${k}`, job: { name: 'waits', arguments: [] }, data: { ms: 2_000 } });
        ids.push((await sim.post({ _id: `after-${k}`, after: [`dep-${k}`] }))._id);
      }
      await sim.until(async () => (await statuses(sim, ids)).every((s) => s === 'done'), { what: 'the dependents to be done' });
      for (const id of ids) expect(sim.runsOf(id), id).to.have.length(1);
      const docs: TaskDoc[] = await Promise.all(ids.map((id) => sim.get(id)));
      for (const doc of docs) expect(doc.executions).to.equal(1);
    });
  });
});

function a2(value: unknown): Record<string, unknown> {
  return (value ?? {}) as Record<string, unknown>;
}

/**
 * Several instances of one worker name, crashes and shutdowns (issue 4, docs/spec.md §3 guarantees):
 * every side effect happens once, a killed instance's run is taken over after its lease, a
 * stopped instance finishes its run and hands its holds back, concurrency is a cap.
 */
import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { iso, postTasks, readRecords, startWorker, useSuiteDb, waitForAll, waitForDoc, waitForStatus } from '../helpers/index';
import { maxOverlap } from '../helpers/run-stats';

describe('instances of one worker name', function () {
  this.timeout(90_000);
  const db = useSuiteDb();

  it('two instances share 300 tasks due within 3 s: each side effect happens exactly once, all done', async () => {
    const [a, b] = await Promise.all([startWorker(db, 'shared'), startWorker(db, 'shared')]);
    expect(a!.instance).to.not.equal(b!.instance);
    const firstDate = Date.now() + 1_000;
    const tasks = Array.from({ length: 300 }, (_, k) => ({
      worker: 'shared',
      date: iso(firstDate + Math.floor((k * 2_000) / 300)),
      job: 'records',
    }));
    const ids = await postTasks(db, tasks);
    const done = await waitForAll(db, 'shared', ids, 'done', 45_000);

    const records = readRecords();
    expect(records, 'side effects').to.have.length(300);
    expect(new Set(records.map((r) => r.id)).size, 'distinct tasks run').to.equal(300);
    expect([...new Set(records.map((r) => r.id))].sort()).to.deep.equal([...ids].sort());
    const dateOf = new Map(done.map((doc) => [doc._id, Date.parse(String(doc.date))]));
    for (const r of records) expect(r.startedAt, `task ${r.id} started early`).to.be.at.least(dateOf.get(r.id)!);
    for (const doc of done) {
      expect(doc.executions).to.equal(1);
      expect(doc.lease).to.equal(undefined);
    }
    const byInstance = new Map<string, number>();
    for (const doc of done) byInstance.set(doc.last_run!.instance, (byInstance.get(doc.last_run!.instance) ?? 0) + 1);
    const lastFinish = Math.max(...done.map((doc) => Date.parse(doc.last_run!.finished_at)));
    console.log(
      `      300 tasks, 2 instances: ${records.length} side effects, ${300 - new Set(records.map((r) => r.id)).size} lost, ` +
        `drained ${lastFinish - firstDate} ms after the first date (last date +${lastFinish - (firstDate + 2_000)} ms); ` +
        `split ${[...byInstance.values()].join('/')}`,
    );
  });

  it('kill -9 of an instance mid-run: another instance runs it again within lease + 2 s, and takes its holds over', async () => {
    const leaseMs = 3_000;
    const victim = await startWorker(db, 'crashy', { args: ['--lease', String(leaseMs)] });
    const [slow, later] = await postTasks(db, [
      { worker: 'crashy', date: iso(Date.now()), job: { name: 'slow', arguments: [4_000] } },
      { worker: 'crashy', date: iso(Date.now() + 3_000), job: 'records' },
    ]);
    const running = await waitForStatus(db, slow!, 'running');
    const scheduled = await waitForStatus(db, later!, 'scheduled');
    expect(running.lease?.instance).to.equal(victim.instance);
    expect(scheduled.lease?.instance).to.equal(victim.instance);
    const survivor = await startWorker(db, 'crashy', { args: ['--lease', String(leaseMs)] });

    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.child.exited;

    // Until its lease expires the dead instance still owns the run: nobody starts a second one.
    const stillHeld = (await db.request<TaskDoc>('GET', slow!)).body;
    expect(stillHeld.status).to.equal('running');
    expect(stillHeld.lease?.instance).to.equal(victim.instance);

    const taken = await waitForDoc(db, slow!, (doc) => doc.status === 'running' && doc.lease?.instance === survivor.instance, leaseMs + 3_000, 'run again by the survivor');
    const done = await waitForStatus(db, slow!, 'done', 10_000);
    expect(done.last_run?.instance).to.equal(survivor.instance);
    const takeoverMs = Date.parse(done.last_run!.started_at) - killedAt;
    expect(takeoverMs, 'kill -9 to second run start').to.be.below(leaseMs + 2_000);
    expect(taken.status).to.equal('running');

    const laterDone = await waitForStatus(db, later!, 'done', leaseMs + 10_000);
    expect(laterDone.last_run?.instance).to.equal(survivor.instance);
    expect(readRecords().map((r) => r.id)).to.deep.equal([later]);
    console.log(`      lease ${leaseMs} ms: second run started ${takeoverMs} ms after kill -9; held task ran ${Date.parse(laterDone.last_run!.started_at) - Date.parse(String(laterDone.date))} ms after its date`);
  });

  it('SIGTERM during a run: the run finishes, exit 0, held tasks are back to waiting', async () => {
    const w = await startWorker(db, 'graceful');
    const [slow, held] = await postTasks(db, [
      { worker: 'graceful', date: iso(Date.now()), job: { name: 'slow', arguments: [2_000] } },
      { worker: 'graceful', date: iso(Date.now() + 60_000), job: 'records' },
    ]);
    await waitForStatus(db, slow!, 'running');
    await waitForStatus(db, held!, 'scheduled');
    w.child.kill('SIGTERM');
    expect(await w.child.exited).to.equal(0);

    const finished = (await db.request<TaskDoc>('GET', slow!)).body;
    expect(finished.status, w.child.stdout + w.child.stderr).to.equal('done');
    expect(finished.result).to.deep.equal({ slept: 2_000 });
    expect(finished.lease).to.equal(undefined);
    const handedBack = (await db.request<TaskDoc>('GET', held!)).body;
    expect(handedBack.status).to.equal('waiting');
    expect(handedBack.lease).to.equal(undefined);
    expect(readRecords()).to.have.length(0);
    expect(w.child.stdout + w.child.stderr).to.match(/handed back/);
  });

  it('a second signal exits at once; the lease then covers the run', async () => {
    const w = await startWorker(db, 'impatient', { args: ['--lease', '2000'] });
    const [hung] = await postTasks(db, [{ worker: 'impatient', date: iso(Date.now()), job: 'hangs' }]);
    await waitForStatus(db, hung!, 'running');
    w.child.kill('SIGTERM');
    await w.child.waitForOutput(/SIGTERM: stopping worker impatient/);
    w.child.kill('SIGTERM');
    expect(await w.child.exited).to.equal(143);
    const left = (await db.request<TaskDoc>('GET', hung!)).body;
    expect(left.status).to.equal('running');
    // Another instance takes it over once the lease has expired.
    const other = await startWorker(db, 'impatient', { args: ['--lease', '2000'] });
    await waitForDoc(db, hung!, (doc) => doc.status === 'running' && doc.lease?.instance === other.instance, 6_000, 'taken over by the new instance');
  });

  it('--concurrency 2 with 6 slow tasks due at once: never more than 2 at a time, started in date order, never early', async () => {
    await startWorker(db, 'capped', { args: ['--concurrency', '2'] });
    const base = Date.now() + 1_500;
    // Posted in reverse, so the order of the runs comes from the dates, not from arrival.
    // Each run lasts 200 ms longer than the one before, so the two slots free up at least
    // 200 ms apart (300, 505, 1000, 1405 ms after the first start): which waiting task gets
    // each slot is then visible in the start times, not blurred by two claims in flight at once.
    const tasks = Array.from({ length: 6 }, (_, k) => ({ worker: 'capped', date: iso(base + k * 5), job: { name: 'slow', arguments: [300 + k * 200] } })).reverse();
    const ids = await postTasks(db, tasks);
    const done = await waitForAll(db, 'capped', ids, 'done', 20_000);
    const runs = done.map((doc) => ({
      date: Date.parse(String(doc.date)),
      start: Date.parse(doc.last_run!.started_at),
      end: Date.parse(doc.last_run!.finished_at),
    }));
    expect(maxOverlap(runs), 'runs at the same moment').to.equal(2);
    const byDate = [...runs].sort((a, b) => a.date - b.date);
    for (let k = 1; k < byDate.length; k++) expect(byDate[k]!.start, `run ${k} started before run ${k - 1}`).to.be.at.least(byDate[k - 1]!.start);
    for (const run of runs) expect(run.start).to.be.at.least(run.date);
  });
});

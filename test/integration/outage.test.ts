/**
 * The database goes away for 5 s and comes back (issue 4): the feed and every write wait it
 * out, runs that finished meanwhile are recorded on its return, tasks that came due meanwhile
 * run once, and no worker process exits. Needs the embedded server's stop()/restart().
 */
import { expect } from 'chai';
import { iso, postTasks, readRecords, startWorker, useSuiteDb, waitForAll, waitForStatus } from '../helpers/index';

const OUTAGE_MS = 5_000;

describe('database outage', function () {
  this.timeout(90_000);
  before(function () {
    if (process.env.COUCHDB_URL) this.skip();
  });
  const db = useSuiteDb();

  it('stopped for 5 s while tasks are due and running: every task ends done exactly once, both workers alive', async () => {
    const instances = await Promise.all([startWorker(db, 'steady'), startWorker(db, 'steady')]);
    const now = Date.now();
    // Running when the database stops, finishing during the outage.
    const slow = await postTasks(
      db,
      Array.from({ length: 4 }, () => ({ worker: 'steady', date: iso(now), job: { name: 'slow', arguments: [2_500] } })),
    );
    // Scheduled before the outage, due during it.
    const due = await postTasks(
      db,
      Array.from({ length: 10 }, (_, k) => ({ worker: 'steady', date: iso(now + 3_000 + k * 200), job: 'records' })),
    );
    for (const id of slow) await waitForStatus(db, id, 'running');
    for (const id of due) await waitForStatus(db, id, 'scheduled');

    await db.stop();
    const stoppedAt = Date.now();
    // The outage itself is the condition under test: the database stays away this long.
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    await db.restart();
    const restartedAt = Date.now();

    const done = await waitForAll(db, 'steady', [...slow, ...due], 'done', 45_000);
    const back = Date.now() - restartedAt;
    for (const doc of done) {
      expect(doc.executions, `task ${doc._id} runs`).to.equal(1);
      expect(doc.lease).to.equal(undefined);
    }
    // The slow runs ended while the database was away; their results were written on its return.
    for (const doc of done.filter((d) => slow.includes(d._id))) {
      expect(Date.parse(doc.last_run!.finished_at)).to.be.below(restartedAt);
      expect(doc.result).to.deep.equal({ slept: 2_500 });
    }
    const records = readRecords();
    expect(records.map((r) => r.id).sort()).to.deep.equal([...due].sort());
    for (const w of instances) expect(w.child.running, `${w.instance} still running`).to.equal(true);
    // Each feed comes back on its own schedule (a backoff of at most 5 s between tries).
    for (const w of instances) await w.child.waitForOutput(/changes feed of worker steady reconnected/, 15_000);
    console.log(`      outage ${restartedAt - stoppedAt} ms: ${done.length} tasks done once each, all recorded within ${back} ms of the restart`);
  });
});

/**
 * The dashboard's figures outside the dashboard: `after status` (counts, what each instance runs
 * now and since when, the runs of the last 10 minutes and their start lateness) and the library
 * API (`counts`, `listPage` with its keyset cursor, `searchById`, `runFigures`, `instances`), from
 * the figures a worker records (every second here: stats.flush_ms) and the heartbeats.
 */
import { expect } from 'chai';
import { connect } from '../../src/api';
import { postTask, runCli, startWorker, useSuiteDb, waitFor, waitForStatus } from '../helpers';

describe('run figures in after status and the library API', function () {
  this.timeout(60_000);
  const db = useSuiteDb({ config: { worker: { heartbeat_ms: 1000 }, stats: { flush_ms: 1000 } } });

  it('after status and the library API show what each instance runs now, the runs of the last 10 minutes with their lateness, and pages of tasks', async () => {
    await startWorker(db, 'fig-cli');
    const now = new Date().toISOString();
    const done = await Promise.all([1, 2, 3].map((i) => postTask(db, { _id: `fig-cli-${i}`, worker: 'fig-cli', date: now, job: 'succeeds' })));
    const failed = await postTask(db, { worker: 'fig-cli', date: now, job: 'throws' });
    await Promise.all([...done.map((id) => waitForStatus(db, id, 'done')), waitForStatus(db, failed, 'error')]);
    await postTask(db, { _id: 'fig-cli-slow', worker: 'fig-cli', date: now, job: { name: 'slow', arguments: [20_000] } });
    await waitForStatus(db, 'fig-cli-slow', 'running');

    const status = await waitFor(async () => {
      const out = (await runCli(['status'], { env: db.env })).stdout;
      return /^fig-cli\s+\S*\s+3\s+1\s+0\s/m.test(out) && /fig-cli-slow/.test(out) ? out : undefined;
    }, { timeoutMs: 20_000, what: 'after status to show the recorded runs and the run in progress' });
    expect(status).to.match(/^runs now:$/m);
    expect(status).to.match(/^fig-cli\s+\S+\s+fig-cli-slow\s+slow\s+\d+s$/m);
    expect(status).to.match(/^WORKER\s+RUNS PER 20 S\s+DONE\s+FAILED\s+RETRIED\s+LATE P50 \/ P99\s+RUNS 24 H$/m);
    const row = status.split('\n').find((line) => line.startsWith('fig-cli ') && /ms/.test(line))!;
    expect(row, 'the lateness of 5 starts').to.match(/\d+ \/ \d+ ms/);

    // The library API, the same figures, while the slow run goes on.
    const client = connect({ config: db.config() });
    try {
      const series = await client.runFigures({ range: 'realtime', worker: 'fig-cli' });
      expect(series.total).to.include({ done: 3, failed: 1, retried: 0 });
      expect(series.points).to.have.length(60);
      expect(series.stepMs).to.equal(10_000);
      const daily = await client.runFigures({ range: 'days' });
      expect(daily.points).to.have.length(90);
      expect(daily.total.done).to.be.at.least(3);

      const counts = await client.counts();
      expect(counts.find((c) => c.worker === 'fig-cli' && c.status === 'done')?.count).to.equal(3);

      const first = await client.listPage({ status: 'done', worker: 'fig-cli', limit: 2 });
      expect(first.tasks.map((t) => t._id)).to.deep.equal(['fig-cli-1', 'fig-cli-2']);
      const second = await client.listPage({ status: 'done', worker: 'fig-cli', limit: 2, cursor: first.next! });
      expect(second.tasks.map((t) => t._id)).to.deep.equal(['fig-cli-3']);
      expect(second.next).to.equal(null);

      expect((await client.searchById('fig-cli-')).tasks.map((t) => t._id)).to.deep.equal(['fig-cli-1', 'fig-cli-2', 'fig-cli-3', 'fig-cli-slow']);
      const instance = (await client.instances()).find((i) => i.worker === 'fig-cli' && i.live)!;
      expect(instance.running_now?.map((r) => r.id)).to.deep.equal(['fig-cli-slow']);
    } finally {
      client.close();
    }
  });
});

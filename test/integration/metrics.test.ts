/**
 * `after start <name> --metrics-port N`: /metrics scraped while tasks run, as Prometheus would.
 */
import { expect } from 'chai';
import { FIXTURE_JOBS, iso, postTask, postTasks, runCli, spawnCli, startWorker, useSuiteDb, waitFor, waitForAll, waitForStatus } from '../helpers/index';
import { databaseRequest } from '../helpers/db';

/** The value of one sample line, e.g. `after_runs_total{job="succeeds",outcome="success",worker="m"}`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => have[key] === value)) return Number(match[3]);
  }
  return 0;
}

describe('worker metrics (--metrics-port)', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  it('counts runs by job and outcome, shows the run in progress, and observes durations and lateness', async () => {
    const { child: worker } = await startWorker(db, 'metered', { args: ['--metrics-port', '0'] });
    const [, url] = await worker.waitForOutput(/metrics of worker metered at (http:\/\/\S+\/metrics)/, 20_000);
    const scrape = async (): Promise<string> => {
      const res = await fetch(url!);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.contain('text/plain');
      return res.text();
    };
    const before = await scrape();
    expect(sample(before, 'after_runs_total', { job: 'succeeds', outcome: 'success' })).to.equal(0);
    expect(before).to.contain('# TYPE after_run_duration_seconds histogram');
    expect(before).to.contain('# TYPE after_run_start_lateness_seconds histogram');

    const now = new Date().toISOString();
    const slow = await postTask(db, { worker: 'metered', date: now, job: { name: 'slow', arguments: [3000] }, status: 'waiting' });
    const during = await waitFor(
      async () => {
        const text = await scrape();
        // runs_running counts the claim too, so the run may not have started yet: wait for both.
        const running = sample(text, 'after_runs_running', { worker: 'metered' }) === 1;
        return running && sample(text, 'after_runs_started_total', { job: 'slow' }) === 1 ? text : undefined;
      },
      { timeoutMs: 10_000, what: 'after_runs_running and after_runs_started_total to show the slow run' },
    );
    expect(sample(during, 'after_tasks_held', { worker: 'metered', status: 'running' })).to.equal(1);
    expect(sample(during, 'after_runs_total', { job: 'slow', outcome: 'success' }), 'not finished yet').to.equal(0);

    const ids: string[] = [];
    for (const job of ['succeeds', 'succeeds', 'throws']) {
      ids.push(await postTask(db, { worker: 'metered', date: now, job, status: 'waiting' }));
    }
    for (const id of ids) await waitForStatus(db, id, ['done', 'error']);
    await waitForStatus(db, slow, 'done');

    const after = await waitFor(
      async () => {
        const text = await scrape();
        return sample(text, 'after_runs_total', { job: 'slow', outcome: 'success' }) === 1 ? text : undefined;
      },
      { timeoutMs: 10_000, what: 'the slow run to be counted' },
    );
    expect(sample(after, 'after_runs_total', { job: 'succeeds', outcome: 'success' })).to.equal(2);
    expect(sample(after, 'after_runs_total', { job: 'throws', outcome: 'failure' })).to.equal(1);
    expect(sample(after, 'after_runs_running', { worker: 'metered' })).to.equal(0);
    expect(sample(after, 'after_run_duration_seconds_count', { job: 'slow', outcome: 'success' })).to.equal(1);
    expect(sample(after, 'after_run_duration_seconds_sum', { job: 'slow', outcome: 'success' })).to.be.at.least(2.9);
    expect(sample(after, 'after_run_start_lateness_seconds_count', { job: 'succeeds' })).to.equal(2);
    expect(after).to.match(/^after_database_conflicts_total|^# TYPE after_database_conflicts_total counter/m);
    expect(after).to.contain('# TYPE after_database_errors_total counter');
    expect(sample(after, 'after_database_errors_total', { worker: 'metered' })).to.equal(0);
    expect(sample(after, 'after_feed_reconnects_total', { worker: 'metered' })).to.equal(0);

    // Feed lag: changes the feed leaves out (other workers' tasks, this instance's own claims and
    // finished tasks) count until this worker's feed next answers: a new task of its own here, due
    // in 2040, which the worker leaves in the database without a write.
    for (let k = 0; k < 3; k++) await db.request('POST', '', { worker: 'someone-else', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    expect(sample(await scrape(), 'after_feed_seq_behind', { worker: 'metered' })).to.be.at.least(3);
    await postTask(db, { worker: 'metered', date: '2040-01-01T00:00:00Z', job: 'succeeds', status: 'waiting' });
    await waitFor(
      async () => (/^after_feed_seq_behind\{worker="metered"\} 0$/m.test(await scrape()) ? true : undefined),
      { timeoutMs: 10_000, what: 'the feed to catch up once a task of its own changed' },
    );
  });

  it('refuses a metrics port that is taken, in one line, before taking any task', async () => {
    const { child: first } = await startWorker(db, 'holder', { args: ['--metrics-port', '0'] });
    const [, port] = await first.waitForOutput(/metrics of worker holder at http:\/\/127\.0\.0\.1:(\d+)\/metrics/, 20_000);
    const second = spawnCli(['start', 'other', '--jobs', FIXTURE_JOBS, '--metrics-port', port!], { env: db.env });
    const code = await second.exited;
    expect(code).to.equal(1);
    expect(second.stderr.trim().split('\n')).to.have.length(1);
    expect(second.stderr).to.contain(`metrics port 127.0.0.1:${port} is already in use`);
    expect(second.stdout).to.not.contain('worker other ready');
  });
});

describe('live instances (heartbeat documents, after status)', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  it('lists a running instance in after status, and no longer once it stopped cleanly', async () => {
    const quiet = await runCli(['status'], { env: db.env });
    expect(quiet.code, quiet.stderr).to.equal(0);
    expect(quiet.stdout).to.contain('no live worker instances');

    const { child: worker, instance } = await startWorker(db, 'beating');
    const status = await waitFor(
      async () => {
        const result = await runCli(['status'], { env: db.env });
        return result.stdout.includes(instance!) ? result : undefined;
      },
      { timeoutMs: 10_000, what: `after status to list instance ${instance}` },
    );
    expect(status.stdout).to.match(/live instances: 1/);
    expect(status.stdout).to.match(new RegExp(`^beating\\s+${instance!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+\\S+\\s+${worker.pid}\\s`, 'm'));

    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
    const after = await runCli(['status'], { env: db.env });
    expect(after.stdout).to.contain('no live worker instances');
    const docs = await db.request<{ rows: Array<{ id: string }> }>('GET', `../${db.dbName}_control/_all_docs`);
    expect(docs.body.rows.filter((row) => row.id.startsWith('instance:')), 'the instance document is deleted on a clean stop').to.have.length(0);
  });

  it('instance documents dated in 2099 take no share: 20 tasks due together start on time; each is logged once and `after status` shows it as suspect (issue 19, row 4)', async () => {
    const control = databaseRequest(db.url, `${db.dbName}_control`);
    for (let n = 1; n <= 3; n++) {
      const put = await control('PUT', encodeURIComponent(`instance:forged:fake:${n}:x`), {
        type: 'instance', worker: 'forged', instance: `fake:${n}:x`, host: 'nowhere', pid: n, started_at: '2026-01-01T00:00:00Z',
        heartbeat_at: '2099-01-01T00:00:00Z', interval_ms: 10_000, running: 0, held: 0,
      });
      expect(put.status).to.be.oneOf([201, 202]);
    }
    const { child: worker } = await startWorker(db, 'forged');
    const date = Date.now() + 1_500;
    const ids = await postTasks(db, Array.from({ length: 20 }, () => ({ worker: 'forged', date: iso(date), job: 'records' })));
    const done = await waitForAll(db, 'forged', ids, 'done', 30_000);
    // Before: the three "live" fakes owned most of them, which ran only after the claim grace (2 s).
    const lateness = done.map((doc) => Date.parse(doc.last_run!.started_at) - Date.parse(String(doc.date)));
    expect(Math.max(...lateness), `lateness ${lateness.join(', ')} ms`).to.be.below(1_000);
    for (let n = 1; n <= 3; n++) {
      const said = `${worker.stdout}${worker.stderr}`.split('\n').filter((line) => line.includes(`instance document instance:forged:fake:${n}:x dates its heartbeat 2099-01-01T00:00:00Z`));
      expect(said, `the warning about fake ${n}`).to.have.length(1);
    }
    const status = await runCli(['status'], { env: db.env });
    expect(status.stdout).to.match(/live instances: 1\b/);
    expect(status.stdout).to.match(/^suspect instances: 3 /m);
    expect(status.stdout).to.match(/^forged\s+fake:1:x\s+nowhere\s+1\s+2099-01-01T00:00:00Z$/m);
  });
});


/**
 * Steering a running schedule as a user does it: `after pause|resume <worker>`, `after task
 * pause|resume|run <id>` and the same controls as plain HTTP writes (the control database's
 * `pause:<worker>` document, a task's `status` and `run_now`), against real worker processes;
 * jobs that decide their next run; `after task list`'s columns.
 */
import { expect } from 'chai';
import { databaseRequest } from '../helpers/db';
import type { TaskDoc } from '../../src/types';
import { getTask, iso, postTask, readRecords, runCli, startWorker, updateTask, useSuiteDb, waitFor, waitForDoc, waitForStatus, type TestDb, type WorkerProcess } from '../helpers/index';

describe('steering a running schedule', function () {
  this.timeout(120_000);
  const db = useSuiteDb();
  let control: TestDb['request'];
  before(() => {
    control = databaseRequest(db.url, `${db.dbName}_control`);
  });

  /** `count` instances of worker `name`. */
  const start = (name: string, count = 1): Promise<WorkerProcess[]> => Promise.all(Array.from({ length: count }, () => startWorker(db, name)));
  const cli = (args: string[]) => runCli(args, { env: db.env });
  const runsOf = (id: string) => readRecords().filter((record) => record.id === id);

  /** Nothing of `ids` ran within `ms`: the only way to see that something does not happen. */
  async function expectNoRunFor(ms: number, ids: string[]): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    expect(readRecords().filter((record) => ids.includes(record.id)), 'no run').to.deep.equal([]);
  }

  describe('a worker name', () => {
    it('after pause / after resume: two instances honour one pause; after status shows it; what came due runs once on resume', async () => {
      const [a, b] = await start('steady', 2);
      await postTask(db, { worker: 'steady', date: '2040-01-01T00:00:00Z', job: 'records' });

      const paused = await cli(['pause', 'steady']);
      expect(paused.code, paused.stderr).to.equal(0);
      expect(paused.stdout).to.match(/^worker steady paused: no new run starts \(2 live instances; runs in progress finish\)/);
      await Promise.all([a, b].map((w) => w!.child.waitForOutput(/worker steady paused/, 5_000)));
      const status = await cli(['status']);
      expect(status.stdout).to.contain('paused workers: steady');

      const ids = [];
      for (const offsetMs of [0, 500, -60_000]) ids.push(await postTask(db, { worker: 'steady', date: iso(Date.now() + offsetMs), job: 'records', status: 'waiting' }));
      await expectNoRunFor(2_500, ids);
      for (const id of ids) expect((await getTask(db, id)).status).to.be.oneOf(['waiting', 'scheduled']);

      const again = await cli(['pause', 'steady']);
      expect(again.stdout).to.match(/^worker steady was already paused \(since /);

      const resumed = await cli(['resume', 'steady']);
      expect(resumed.code, resumed.stderr).to.equal(0);
      expect(resumed.stdout).to.match(/^worker steady resumed/);
      for (const id of ids) await waitForStatus(db, id, 'done', 15_000);
      expect(readRecords().map((record) => record.id).sort(), 'each once').to.deep.equal([...ids].sort());
      expect((await cli(['status'])).stdout).not.to.contain('paused workers');
      expect((await cli(['resume', 'steady'])).stdout).to.match(/^worker steady was not paused/);
    });

    it('the same with plain HTTP: PUT <db>_control/pause:<worker>, then DELETE it', async () => {
      const [w] = await start('curled');
      const put = await control('PUT', encodeURIComponent('pause:curled'), { worker: 'curled' });
      expect(put.status, JSON.stringify(put.body)).to.equal(201);
      await w!.child.waitForOutput(/worker curled paused/, 5_000);
      const id = await postTask(db, { worker: 'curled', date: iso(Date.now()), job: 'records' });
      await expectNoRunFor(2_000, [id]);

      const pauseDoc = await control<{ _rev: string }>('GET', encodeURIComponent('pause:curled'));
      expect((await control('DELETE', `${encodeURIComponent('pause:curled')}?rev=${pauseDoc.body._rev}`)).status).to.equal(200);
      await waitForStatus(db, id, 'done', 10_000);
      expect(runsOf(id)).to.have.length(1);
    });

    it('a paused name survives a restart of its instances', async () => {
      expect((await cli(['pause', 'sleepy'])).code).to.equal(0);
      const id = await postTask(db, { worker: 'sleepy', date: iso(Date.now()), job: 'records' });
      const [w] = await start('sleepy');
      await w!.child.waitForOutput(/worker sleepy paused/, 5_000);
      await expectNoRunFor(2_000, [id]);
      expect((await cli(['resume', 'sleepy'])).code).to.equal(0);
      await waitForStatus(db, id, 'done', 10_000);
    });

    it('pausing a name no task has is allowed, and says so; a bad name is one line and nothing written', async () => {
      const ghost = await cli(['pause', 'ghost']);
      expect(ghost.code, ghost.stderr).to.equal(0);
      expect(ghost.stdout.trim().split('\n')).to.deep.equal([`worker ghost paused, but no task names worker ghost: tasks created for it will wait until 'after resume ghost'`]);
      expect((await control<{ worker: string }>('GET', encodeURIComponent('pause:ghost'))).body.worker).to.equal('ghost');
      expect((await cli(['resume', 'ghost'])).code).to.equal(0);
      expect((await control('GET', encodeURIComponent('pause:ghost'))).status).to.equal(404);

      const bad = await cli(['pause', 'bad\u0007name']);
      expect(bad.code).to.equal(1);
      expect(bad.stderr.trim().split('\n')).to.have.length(1);
      expect(bad.stderr).to.match(/^after: invalid worker name/);
    });
  });

  describe('one task', () => {
    it('after task pause / resume: dropped while paused, run once resumed (its date passed meanwhile)', async () => {
      await start('tasks');
      const id = await postTask(db, { worker: 'tasks', date: iso(Date.now() + 2_000), job: 'records' });
      await waitForDoc(db, id, (doc) => doc.status === 'scheduled' || doc.status === 'waiting', 5_000, 'held');
      const paused = await cli(['task', 'pause', id]);
      expect(paused.code, paused.stderr).to.equal(0);
      expect(paused.stdout.trim()).to.equal(`${id} paused`);
      await expectNoRunFor(3_500, [id]);
      expect((await getTask(db, id)).status).to.equal('paused');

      const resumed = await cli(['task', 'resume', id]);
      expect(resumed.code, resumed.stderr).to.equal(0);
      expect(resumed.stdout).to.match(new RegExp(`^${id} waiting `));
      await waitForStatus(db, id, 'done', 10_000);
      expect(runsOf(id)).to.have.length(1);

      const notPaused = await cli(['task', 'resume', id]);
      expect(notPaused.code).to.equal(1);
      expect(notPaused.stderr).to.match(/^after: task \S+ is not paused \(it is done\)/);
      const finished = await cli(['task', 'pause', id]);
      expect(finished.code).to.equal(1);
      expect(finished.stderr).to.match(/is done: there is nothing left to pause/);
    });

    it('the same with plain HTTP: "status": "paused", then "waiting"', async () => {
      await start('tasks-http');
      const id = await postTask(db, { worker: 'tasks-http', date: iso(Date.now() + 2_000), job: 'records', status: 'paused' });
      await expectNoRunFor(3_500, [id]);
      await updateTask(db, id, (doc) => ({ ...doc, status: 'waiting' }));
      await waitForStatus(db, id, 'done', 10_000);
      expect(runsOf(id)).to.have.length(1);
    });
  });

  describe('run now', () => {
    it('after task run: a repeating task runs one extra time now and keeps its next date', async () => {
      await start('daily');
      const tomorrow = iso(Date.now() + 86_400_000);
      const id = await postTask(db, { worker: 'daily', date: tomorrow, job: 'records', repeat: { days: 1 } });
      const ran = await cli(['task', 'run', id]);
      expect(ran.code, ran.stderr).to.equal(0);
      expect(ran.stdout.trim()).to.equal(`${id} runs now; its series keeps its next date ${tomorrow}`);
      const doc = await waitForDoc(db, id, (d) => d.executions === 1 && d.status === 'waiting' && d.run_now === undefined, 10_000, 'the extra run recorded');
      expect(doc).to.deep.include({ date: tomorrow });
      expect(doc).to.not.have.property('repetitions');
      expect(runsOf(id)).to.have.length(1);
    });

    it('a one-shot task runs now, once; a finished one runs again', async () => {
      await start('oneshot');
      const id = await postTask(db, { worker: 'oneshot', date: '2040-01-01T00:00:00Z', job: 'records' });
      expect((await cli(['task', 'run', id])).code).to.equal(0);
      const done = await waitForStatus(db, id, 'done', 10_000);
      expect(done).to.deep.include({ executions: 1, date: '2040-01-01T00:00:00Z' });
      expect(done).to.not.have.property('run_now');
      expect((await cli(['task', 'run', id])).code).to.equal(0);
      await waitForDoc(db, id, (d) => d.executions === 2 && d.status === 'done', 10_000, 'run again');
      expect(runsOf(id)).to.have.length(2);
    });

    it('the same with plain HTTP: "run_now": "<ISO time>" beside the date', async () => {
      await start('run-http');
      const date = iso(Date.now() + 3_600_000);
      const id = await postTask(db, { worker: 'run-http', date, job: 'records', repeat: { hours: 1 } });
      await updateTask(db, id, (doc) => ({ ...doc, run_now: new Date().toISOString() }));
      const doc = await waitForDoc(db, id, (d) => d.executions === 1 && d.run_now === undefined, 10_000, 'the extra run recorded');
      expect(doc).to.deep.include({ date, status: doc.status === 'scheduled' ? 'scheduled' : 'waiting' });
    });

    it('refused for a running task and a canceled one, with one clear line and nothing written', async () => {
      await start('busy');
      const running = await postTask(db, { worker: 'busy', date: iso(Date.now()), job: { name: 'slow', arguments: [60_000] } });
      await waitForStatus(db, running, 'running', 10_000);
      const rev = (await getTask(db, running))._rev;
      const refused = await cli(['task', 'run', running]);
      expect(refused.code).to.equal(1);
      expect(refused.stderr.trim()).to.match(/^after: task \S+ is running now; it can run again once this run has ended$/);
      expect((await cli(['task', 'cancel', running])).code).to.equal(0);
      const canceled = await waitForStatus(db, running, 'canceled', 10_000);
      expect(canceled._rev).not.to.equal(rev);

      const again = await cli(['task', 'run', running]);
      expect(again.code).to.equal(1);
      expect(again.stderr.trim()).to.match(/^after: task \S+ is canceled; it does not run any more$/);
      expect((await getTask(db, running))._rev, 'nothing written').to.equal(canceled._rev);
    });

    it('says when the worker is paused or has no live instance', async () => {
      const id = await postTask(db, { worker: 'nobody-home', date: '2040-01-01T00:00:00Z', job: 'records' });
      const ran = await cli(['task', 'run', id]);
      expect(ran.stdout).to.contain('no live instance of worker nobody-home runs now: it runs when one starts');
      expect((await getTask(db, id)).run_now).to.be.a('string');
    });
  });

  describe('jobs that decide their next run (EventEmitter form, a real worker)', () => {
    const cases: Array<{ outcome: string; delay: string; check(doc: TaskDoc): void }> = [
      { outcome: 'later', delay: '300ms', check: (doc) => expect(doc).to.deep.include({ executions: 3, result: { calls: 3 } }) },
      { outcome: 'retry', delay: '300ms', check: (doc) => expect(doc).to.deep.include({ executions: 3, retries: 0 }) },
      { outcome: 'release', delay: '300ms', check: (doc) => expect(doc).to.deep.include({ executions: 1, result: { calls: 3 } }) },
    ];
    for (const c of cases) {
      it(`task.emit('${c.outcome}', '${c.delay}') twice, then done`, async () => {
        await start(`emits-${c.outcome}`);
        const id = await postTask(db, { worker: `emits-${c.outcome}`, date: iso(Date.now()), job: 'steers', data: { outcome: c.outcome, delay: c.delay, times: 2 } });
        const doc = await waitForStatus(db, id, 'done', 15_000);
        c.check(doc);
        const starts = runsOf(id).map((record) => record.startedAt);
        expect(starts).to.have.length(3);
        for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!, 'the delay the job gave').to.be.at.least(300);
      });
    }

    it('a retry is counted while the task waits for it', async () => {
      await start('emits-retry-slow');
      const id = await postTask(db, { worker: 'emits-retry-slow', date: iso(Date.now()), job: 'steers', data: { outcome: 'retry', delay: '1h', times: 1 } });
      const doc = await waitForDoc(db, id, (d) => d.retries === 1, 10_000, 'the retry counted');
      expect(doc.error).to.deep.equal({ message: 'call 1: not yet', code: 'E_RETRY' });
      expect(Date.parse(String(doc.date)) - Date.now()).to.be.above(3_500_000);
    });
  });

  it('after task list shows id, worker, job, schedule with its zone, next date, status and last run', async () => {
    await start('listed');
    const id = await postTask(db, { _id: 'listed-daily', worker: 'listed', date: iso(Date.now()), job: 'records', repeat: { cron: '0 9 * * *', timezone: 'Europe/Paris' } });
    await waitFor(async () => (await getTask(db, id)).executions === 1, { timeoutMs: 10_000, what: 'the first run' });
    const listed = await cli(['task', 'list', '--worker', 'listed']);
    expect(listed.code, listed.stderr).to.equal(0);
    const [header, row] = listed.stdout.trim().split('\n');
    expect(header!.split(/\s{2,}/)).to.deep.equal(['ID', 'WORKER', 'JOB', 'SCHEDULE', 'NEXT', 'STATUS', 'LAST RUN']);
    const cells = row!.split(/\s{2,}/);
    expect(cells.slice(0, 4)).to.deep.equal(['listed-daily', 'listed', 'records', 'cron 0 9 * * * (Europe/Paris)']);
    expect(cells[4]).to.equal((await getTask(db, id)).date);
    expect(cells[6]).to.equal('success');
  });
});

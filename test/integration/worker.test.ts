/**
 * The worker as a user meets it: `after start <name>` as a child process, tasks posted over
 * HTTP like curl does, and what the task documents (and the jobs' side effects) show.
 */
import { expect } from 'chai';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { FIXTURE_JOBS, REPO_ROOT, iso, postTask, readRecords, startTestDb, startWorker, useSuiteDb, waitFor, waitForStatus } from '../helpers/index';

const EXAMPLE_JOBS = path.join(REPO_ROOT, 'jobs');

describe('worker', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  it('runs the seed example: an overdue task with the EventEmitter job goes done', async () => {
    await startWorker(db, 'manobi', { jobs: EXAMPLE_JOBS });
    const id = await postTask(db, {
      worker: 'manobi',
      date: '2013-01-12',
      job: { name: 'start_replication', arguments: [2, 3, 'test'] },
      status: 'waiting',
    });
    const done = await waitForStatus(db, id, 'done', 10_000);
    expect(done.executions).to.equal(1);
    expect(done.last_run).to.include({ worker: 'manobi' });
    expect(Date.parse(done.last_run!.finished_at)).to.be.at.least(Date.parse(done.last_run!.started_at));
    expect(done.result).to.not.equal(undefined);
    expect(done.lease).to.equal(undefined);
  });

  it('runs tasks that were overdue before the worker started, at once', async () => {
    const ids = [await postTask(db, { worker: 'early', date: iso(Date.now() - 60_000), job: 'records' }), await postTask(db, { worker: 'early', date: '2001-01-01', job: 'records' })];
    await startWorker(db, 'early');
    for (const id of ids) await waitForStatus(db, id, 'done', 10_000);
    expect(readRecords().map((r) => r.id).sort()).to.deep.equal([...ids].sort());
  });

  it('never starts a task before its date, and starts it within a second after', async () => {
    await startWorker(db, 'punctual');
    const date = Date.now() + 3_000;
    const id = await postTask(db, { worker: 'punctual', date: iso(date), job: { name: 'records' } });
    const scheduled = await waitForStatus(db, id, 'scheduled', 5_000);
    expect(scheduled.lease).to.have.property('instance');
    await waitForStatus(db, id, 'done', 10_000);
    const [run] = readRecords();
    expect(run!.startedAt).to.be.at.least(date);
    expect(run!.startedAt - date).to.be.below(1_000);
  });

  it('repeats {"s": 2} with limit 3: three runs two seconds apart, then done', async () => {
    await startWorker(db, 'repeater');
    const first = Date.now() + 500;
    const id = await postTask(db, { worker: 'repeater', date: iso(first), job: 'records', repeat: { s: 2, limit: 3 } });
    const done = await waitForStatus(db, id, 'done', 15_000);
    expect(done.executions).to.equal(3);
    expect(done.repetitions).to.equal(3);
    const starts = readRecords().map((r) => r.startedAt);
    expect(starts).to.have.length(3);
    starts.forEach((at, k) => expect(at).to.be.at.least(first + k * 2_000));
    expect(done.history).to.have.length(3);
  });

  it('records a job failure as error with its message', async () => {
    await startWorker(db, 'failing');
    const id = await postTask(db, { worker: 'failing', date: iso(Date.now()), job: 'throws' });
    const failed = await waitForStatus(db, id, 'error');
    expect(failed.error?.message).to.be.a('string').and.not.empty;
    expect(failed.executions).to.equal(1);
  });

  it('runs both job forms and jobs exported by jobs/index.js', async () => {
    await startWorker(db, 'forms');
    const jobs = ['succeeds', 'emitter-done', 'esm-job', 'fromIndexA'];
    const ids = await Promise.all(jobs.map((job) => postTask(db, { worker: 'forms', date: iso(Date.now()), job })));
    for (const id of ids) await waitForStatus(db, id, 'done');
    const failed = await postTask(db, { worker: 'forms', date: iso(Date.now()), job: 'emitter-error' });
    await waitForStatus(db, failed, 'error');
  });

  it('sets an unknown job, and a job name outside the jobs folder, to error', async () => {
    await startWorker(db, 'strict');
    const unknown = await postTask(db, { worker: 'strict', date: iso(Date.now()), job: 'no_such_job' });
    const escape = await postTask(db, { worker: 'strict', date: iso(Date.now()), job: { name: '../../jobs/start_replication' } });
    const absolute = await postTask(db, { worker: 'strict', date: iso(Date.now()), job: { name: path.join(FIXTURE_JOBS, 'succeeds') } });
    for (const id of [unknown, escape, absolute]) {
      const doc = await waitForStatus(db, id, 'error');
      expect(doc.error?.message).to.match(/unknown job/);
      expect(doc.executions ?? 0).to.equal(0);
    }
  });

  it('accepts any document by default (no JavaScript on the write path), and refuses an invalid one at write time after `after init --validate`', async () => {
    const task = { worker: 'picky', date: '2013-13-45', job: 'succeeds', status: 'canceled' };
    expect((await db.request('POST', '', task)).status).to.equal(201);
    const validated = await startTestDb({ init: false });
    await validated.init({ validate: true });
    const res = await validated.request<{ error: string; reason: string }>('POST', '', { ...task, status: 'waiting' });
    expect(res.status).to.equal(403);
    expect(res.body.reason).to.match(/^date/);
  });

  it('sets an invalid document written before `after init` to error naming the field, and keeps running', async () => {
    // Documents no validator checked (the default: the validator is opt-in).
    const raw = await startTestDb({ init: false });
    expect((await raw.adminRequest('PUT', '')).status).to.equal(201);
    const write = async (task: Record<string, unknown>): Promise<string> => (await raw.request<{ id: string }>('POST', '', task)).body.id;
    const badDate = await write({ worker: 'picky', date: '2013-13-45', job: 'succeeds' });
    const noJob = await write({ worker: 'picky', date: '2013-01-12' });
    const badStatus = await write({ worker: 'picky', date: '2013-01-12', job: 'succeeds', status: 'sleeping' });
    await raw.init();
    const { child } = await startWorker(raw, 'picky');
    expect((await waitForStatus(raw, badDate, 'error')).error?.message).to.match(/^date/);
    expect((await waitForStatus(raw, noJob, 'error')).error?.message).to.match(/^job/);
    expect((await waitForStatus(raw, badStatus, 'error')).error?.message).to.match(/^status/);
    const good = (await raw.request<{ id: string }>('POST', '', { worker: 'picky', date: '2013-01-12', job: 'succeeds' })).body.id;
    await waitForStatus(raw, good, 'done');
    expect(child.running).to.equal(true);
  });

  it('cancels a scheduled task: canceled, and it never runs', async () => {
    await startWorker(db, 'canceler');
    const id = await postTask(db, { worker: 'canceler', date: iso(Date.now() + 4_000), job: 'records' });
    const scheduled = await waitForStatus(db, id, 'scheduled');
    const put = await db.request('PUT', id, { ...scheduled, status: 'cancel' });
    expect(put.status).to.equal(201);
    await waitForStatus(db, id, 'canceled');
    const later = await postTask(db, { worker: 'canceler', date: iso(Date.now() + 4_500), job: 'records' });
    await waitForStatus(db, later, 'done', 10_000);
    expect(readRecords().map((r) => r.id)).to.deep.equal([later]);
  });

  it('cancels a running task: its job is aborted', async () => {
    await startWorker(db, 'aborter');
    const id = await postTask(db, { worker: 'aborter', date: iso(Date.now()), job: 'hangs' });
    const running = await waitForStatus(db, id, 'running');
    await db.request('PUT', id, { ...running, status: 'cancel' });
    const canceled = await waitForStatus(db, id, 'canceled');
    expect(canceled.lease).to.equal(undefined);
  });

  it('moves a scheduled task with reschedule', async () => {
    await startWorker(db, 'mover');
    const id = await postTask(db, { worker: 'mover', date: iso(Date.now() + 60_000), job: 'records' });
    const scheduled = await waitForStatus(db, id, 'scheduled');
    const newDate = Date.now() + 1_500;
    await db.request('PUT', id, { ...scheduled, status: 'reschedule', date: iso(newDate) });
    await waitForStatus(db, id, 'done', 10_000);
    const [run] = readRecords();
    expect(run!.startedAt).to.be.at.least(newDate);
  });

  it('starts a repeat series again from the date of a reschedule', async () => {
    await startWorker(db, 'reseries');
    const id = await postTask(db, { worker: 'reseries', date: iso(Date.now()), job: 'records', repeat: { s: 30 } });
    const afterFirst = await waitFor(
      async () => {
        const doc = (await db.request<TaskDoc>('GET', id)).body;
        return doc.executions === 1 && doc.status === 'scheduled' ? doc : undefined;
      },
      { timeoutMs: 10_000, what: 'the first run and the hold of the second' },
    );
    expect(afterFirst.anchor_date).to.be.a('string');
    const newDate = Date.now() + 1_123;
    await db.request('PUT', id, { ...afterFirst, status: 'reschedule', date: iso(newDate) });
    const next = await waitFor(
      async () => {
        const doc = (await db.request<TaskDoc>('GET', id)).body;
        return doc.executions === 2 && doc.status === 'scheduled' ? doc : undefined;
      },
      { timeoutMs: 10_000, what: 'the run at the new date' },
    );
    expect(Date.parse(String(next.date))).to.equal(newDate + 30_000);
    expect(next.anchor_date).to.equal(iso(newDate));
  });

  it('drops a deleted task from memory: it never runs', async () => {
    await startWorker(db, 'deleter');
    const id = await postTask(db, { worker: 'deleter', date: iso(Date.now() + 2_500), job: 'records' });
    const scheduled = await waitForStatus(db, id, 'scheduled');
    const del = await db.request('DELETE', `${id}?rev=${scheduled._rev}`);
    expect(del.status).to.equal(200);
    const marker = await postTask(db, { worker: 'deleter', date: iso(Date.now() + 3_500), job: 'records' });
    await waitForStatus(db, marker, 'done', 10_000);
    expect(readRecords().map((r) => r.id)).to.deep.equal([marker]);
  });

  it('runs a finished task again when a user sets it back to waiting', async () => {
    await startWorker(db, 'again');
    const id = await postTask(db, { worker: 'again', date: iso(Date.now()), job: 'records' });
    const done = await waitForStatus(db, id, 'done');
    await db.request('PUT', id, { ...done, status: 'waiting' });
    await waitFor(async () => readRecords().length === 2, { timeoutMs: 10_000, what: 'the second run' });
    const again = await waitForStatus(db, id, 'done');
    expect(again.executions).to.equal(2);
  });

  it('runs what came due while it was stopped, after a restart', async () => {
    const { child: worker } = await startWorker(db, 'sleeper');
    const id = await postTask(db, { worker: 'sleeper', date: iso(Date.now() + 2_000), job: 'records' });
    await waitForStatus(db, id, 'scheduled');
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
    if (process.env.DEBUG_WORKER) console.log(worker.stdout, worker.stderr);
    // A clean stop hands the held task back.
    const handedBack = (await db.request<TaskDoc>('GET', id)).body;
    expect(handedBack.status).to.equal('waiting');
    expect(handedBack.lease).to.equal(undefined);
    await waitFor(async () => Date.now() > Date.parse(String(handedBack.date)) + 500, { timeoutMs: 5_000, what: 'the date to pass' });
    await startWorker(db, 'sleeper');
    await waitForStatus(db, id, 'done');
    expect(readRecords()).to.have.length(1);
  });
});

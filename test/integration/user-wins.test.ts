/**
 * A user's write always wins over the worker's (issue 11): a task that repeats every 20 ms is
 * rewritten by its worker faster than a read-then-write can land, yet `after task cancel`,
 * `reschedule` and `delete` take effect at once (the CLI asks the worker holding it, through a
 * request document in the control database, when its direct writes keep losing). Repeats
 * shorter than `worker.min_repeat_ms` are refused.
 */
import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { iso, postTask, runCli, startWorker, useSuiteDb, waitFor, waitForStatus } from '../helpers/index';

describe('a user\'s write wins over a fast worker', function () {
  this.timeout(60_000);
  const db = useSuiteDb({ config: { worker: { min_repeat_ms: 10 } } });

  async function fastTask(name: string): Promise<string> {
    const id = await postTask(db, { worker: name, date: iso(Date.now()), job: 'succeeds', repeat: { ms: 20 } });
    await waitFor(async () => ((await db.request<TaskDoc>('GET', id)).body.executions ?? 0) >= 10, { timeoutMs: 20_000, what: 'ten runs of the fast task' });
    return id;
  }

  async function executions(id: string): Promise<number> {
    return (await db.request<TaskDoc>('GET', id)).body.executions ?? 0;
  }

  it('cancels a task repeating every 20 ms at once, and it runs no more', async () => {
    await startWorker(db, 'fast');
    const id = await fastTask('fast');
    const started = Date.now();
    const cancel = await runCli(['task', 'cancel', id], { env: db.env });
    expect(cancel.code, cancel.stderr).to.equal(0);
    expect(Date.now() - started, 'the cancel took').to.be.below(10_000);
    const canceled = await waitForStatus(db, id, 'canceled', 10_000);
    const runs = canceled.executions ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await executions(id), 'runs after the cancel').to.equal(runs);
  });

  it('reschedules and deletes a task repeating every 20 ms', async () => {
    await startWorker(db, 'fast2');
    const id = await fastTask('fast2');
    const later = '2031-01-01T00:00:00.000Z';
    const moved = await runCli(['task', 'reschedule', id, later], { env: db.env });
    expect(moved.code, moved.stderr).to.equal(0);
    await waitFor(async () => (await db.request<TaskDoc>('GET', id)).body.date === later, { timeoutMs: 10_000, what: 'the new date' });

    const other = await fastTask('fast2');
    const deleted = await runCli(['task', 'delete', other], { env: db.env });
    expect(deleted.code, deleted.stderr).to.equal(0);
    expect((await db.request('GET', other)).status).to.equal(404);
  });

  it('refuses a repeat shorter than worker.min_repeat_ms: the CLI says why, and a posted one goes to error', async () => {
    const add = await runCli(['task', 'add', '--worker', 'tiny', '--date', iso(Date.now()), '--job', 'succeeds', '--repeat', '{"ms": 1}'], { env: db.env });
    expect(add.code).to.not.equal(0);
    expect(add.stderr).to.match(/repeat/);
    await startWorker(db, 'tiny');
    const id = await postTask(db, { worker: 'tiny', date: iso(Date.now()), job: 'succeeds', repeat: { ms: 1 } });
    const refused = await waitForStatus(db, id, 'error', 10_000);
    expect(refused.error?.message).to.match(/^repeat: .*min_repeat_ms/);
    expect(refused.executions ?? 0).to.equal(0);
  });
});

import { expect } from 'chai';
import { runCli, useSuiteDb } from '../helpers/index';

describe('after purge', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  async function put(id: string, fields: Record<string, unknown>): Promise<void> {
    const res = await db.request('PUT', id, { worker: 'billing', job: 'succeeds', ...fields });
    expect(res.status).to.equal(201);
  }

  it('removes finished tasks older than the cutoff and nothing else', async () => {
    const recent = new Date(Date.now() - 86_400_000).toISOString();
    await put('old-done', { status: 'done', date: '2020-01-01T00:00:00Z' });
    await put('old-error', { status: 'error', date: '2020-02-01T00:00:00Z' });
    await put('old-canceled', { status: 'canceled', date: '2020-03-01' });
    await put('old-other-worker', { status: 'done', date: '2020-01-01', worker: 'reports' });
    await put('recent-done', { status: 'done', date: recent });
    await put('old-waiting', { status: 'waiting', date: '2020-01-01' });
    await put('old-running', { status: 'running', date: '2020-01-01' });

    const dry = await runCli(['purge', '--older-than', '30d', '--worker', 'billing', '--dry-run'], { env: db.env });
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(/^3 finished tasks of worker billing/);
    expect((await db.request('GET', 'old-done')).status).to.equal(200);

    const real = await runCli(['purge', '--older-than', '30d', '--worker', 'billing'], { env: db.env });
    expect(real.code, real.stderr).to.equal(0);
    expect(real.stdout).to.match(/^3 of 3 finished tasks/);
    for (const id of ['old-done', 'old-error', 'old-canceled']) expect((await db.request('GET', id)).status).to.equal(404);
    for (const id of ['old-other-worker', 'recent-done', 'old-waiting', 'old-running']) expect((await db.request('GET', id)).status).to.equal(200);

    const all = await runCli(['purge', '--older-than', '30d'], { env: db.env });
    expect(all.stdout).to.match(/^1 of 1 finished tasks/);
    expect((await db.request('GET', 'old-other-worker')).status).to.equal(404);
  });

  it('refuses a duration it cannot read, in one line', async () => {
    const res = await runCli(['purge', '--older-than', 'a month'], { env: db.env });
    expect(res.code).to.not.equal(0);
    expect(res.stderr.trim().split('\n')).to.have.length(1);
    expect(res.stderr).to.match(/^after: .*--older-than/);
  });
});

/**
 * Flow control across real worker processes (issue 15), on the embedded server and on CouchDB
 * (COUCHDB_URL): a rate limit shared by two instances, priorities with one run slot, tasks that
 * wait for other tasks (the dependency feed: `_doc_ids` on both servers), and the CLI flags
 * with `after next` showing the dates the worker will use.
 */
import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { iso, postTasks, readRecords, runCli, startWorker, useSuiteDb, waitForAll, waitForStatus } from '../helpers/index';
import { mostInAnyWindow } from '../helpers/run-stats';

describe('flow control across worker processes', function () {
  this.timeout(120_000);
  const db = useSuiteDb({ config: { limits: { rated: { rate: '5/s' } } } });

  it('a rate of 5/s over two instances and 40 tasks: no one-second window with more than 5 starts, all run', async () => {
    await Promise.all([startWorker(db, 'rated'), startWorker(db, 'rated')]);
    // Each instance uses its share (3 and 2) once the other has seen it for a window.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const firstDate = Date.now() + 1_000;
    const ids = await postTasks(db, Array.from({ length: 40 }, () => ({ worker: 'rated', date: iso(firstDate), job: 'records' })));
    const done = await waitForAll(db, 'rated', ids, 'done', 60_000);
    const records = readRecords();
    expect(records, 'side effects').to.have.length(40);
    expect(new Set(records.map((r) => r.id)).size).to.equal(40);
    const starts = records.map((r) => r.startedAt);
    const most = mostInAnyWindow(starts, 1000);
    const byInstance = new Map<string, number>();
    for (const doc of done) byInstance.set(doc.last_run!.instance, (byInstance.get(doc.last_run!.instance) ?? 0) + 1);
    console.log(`      40 tasks at 5/s on 2 instances: most starts in any 1 s window ${most}, spread over ${Math.max(...starts) - Math.min(...starts)} ms, split ${[...byInstance.values()].join('/')}`);
    expect(most).to.be.at.most(5);
    expect(byInstance.size, 'both instances ran some').to.equal(2);
    for (const r of records) expect(r.startedAt).to.be.at.least(firstDate);
  });

  it('priority with one run slot: 20 tasks due at once start highest first, date order within one priority', async () => {
    await startWorker(db, 'ranked', { args: ['--concurrency', '1'] });
    const dueMs = Date.now() + 3_000;
    const priorities = [3, 0, 7, -2, 5, 0, 9, 1, 5, -2, 4, 0, 8, 2, 6, 10, -5, 3, 1, 7];
    const tasks = priorities.map((priority, k) => ({ worker: 'ranked', date: iso(dueMs + (k % 4) * 10), job: 'records', priority, k }));
    const ids = await postTasks(db, tasks);
    await waitForAll(db, 'ranked', ids, 'done', 60_000);
    const started = readRecords().map((r) => r.id);
    const byId = new Map(ids.map((id, k) => [id, tasks[k]!]));
    // The first one due may start alone, before the others are due; from then on all 20 are due.
    const rest = started.slice(1).map((id) => byId.get(id)!);
    const expected = [...rest].sort((a, b) => b.priority - a.priority || Date.parse(a.date) - Date.parse(b.date));
    expect(rest.map((t) => [t.priority, t.date])).to.deep.equal(expected.map((t) => [t.priority, t.date]));
  });

  it('dependencies: a chain and a fan-in run in order, woken by the dependency feed; a failure and a missing id end in error', async () => {
    await startWorker(db, 'flows');
    const [extract, fx] = await postTasks(db, [
      { worker: 'flows', date: iso(Date.now()), job: 'records' },
      { worker: 'flows', date: iso(Date.now() + 2_000), job: 'records' },
    ]);
    const [transform] = await postTasks(db, [{ worker: 'flows', date: iso(Date.now()), job: 'records', after: [extract] }]);
    const [report] = await postTasks(db, [{ worker: 'flows', date: iso(Date.now()), job: 'records', after: [transform, fx] }]);
    const [failed] = await postTasks(db, [{ worker: 'flows', date: iso(Date.now()), job: 'throws' }]);
    const [blocked, anyway, orphan] = await postTasks(db, [
      { worker: 'flows', date: iso(Date.now()), job: 'records', after: [failed] },
      { worker: 'flows', date: iso(Date.now()), job: 'records', after: [failed], after_failure: 'run' },
      { worker: 'flows', date: iso(Date.now()), job: 'records', after: ['no-such-task'] },
    ]);
    const reportDoc = await waitForStatus(db, report!, 'done', 30_000);
    await waitForStatus(db, anyway!, 'done', 30_000);
    const blockedDoc = await waitForStatus(db, blocked!, 'error', 30_000);
    const orphanDoc = await waitForStatus(db, orphan!, 'error', 30_000);
    const order = readRecords().map((r) => r.id);
    expect(order.indexOf(extract!)).to.be.below(order.indexOf(transform!));
    expect(order.indexOf(transform!)).to.be.below(order.indexOf(report!));
    expect(order.indexOf(fx!)).to.be.below(order.indexOf(report!));
    expect(order).to.not.include(blocked);
    expect(order).to.not.include(orphan);
    expect(blockedDoc.error).to.deep.include({ code: 'E_DEPENDENCY' });
    expect(blockedDoc.error!.message).to.match(/ended error/);
    expect(orphanDoc.error!.message).to.match(/"no-such-task" does not exist/);
    // Woken through the feed: the report started soon after the later of its two dependencies finished.
    const fxDoc = await db.request<TaskDoc>('GET', fx!);
    const transformDoc = await db.request<TaskDoc>('GET', transform!);
    const lastDependency = Math.max(Date.parse(fxDoc.body.last_run!.finished_at), Date.parse(transformDoc.body.last_run!.finished_at));
    expect(Date.parse(reportDoc.last_run!.started_at) - lastDependency).to.be.below(5_000);
  });

  it('a cycle is reported on both tasks, neither runs', async () => {
    await startWorker(db, 'cycles');
    const res = await db.request('POST', '_bulk_docs', {
      docs: [
        { _id: 'cycle-a', worker: 'cycles', date: iso(Date.now()), job: 'records', after: ['cycle-b'] },
        { _id: 'cycle-b', worker: 'cycles', date: iso(Date.now()), job: 'records', after: ['cycle-a'] },
      ],
    });
    expect(res.status).to.equal(201);
    const a = await waitForStatus(db, 'cycle-a', 'error', 30_000);
    await waitForStatus(db, 'cycle-b', 'error', 30_000);
    expect(a.error!.message).to.match(/waits for itself/);
    expect(readRecords()).to.have.length(0);
  });

  it('after task add --cron --delay --jitter --priority --after, and after next showing the stored date first', async () => {
    const added = await runCli(
      ['task', 'add', '--worker', 'cli-flow', '--job', 'records', '--cron', '0 * * * *', '--delay', '30s', '--jitter', '5m', '--priority', '4', '--after', 'x1,x2'],
      { env: db.env },
    );
    expect(added.code, added.stderr).to.equal(0);
    const id = added.stdout.trim();
    const doc = (await db.request<TaskDoc>('GET', encodeURIComponent(id))).body;
    expect(doc).to.deep.include({ priority: 4, after: ['x1', 'x2'], repeat: { cron: '0 * * * *', delay: '30s', jitter: '5m' } });
    const date = Date.parse(String(doc.date));
    const fire = new Date(date);
    fire.setUTCMinutes(0, 30, 0);
    expect(date - fire.getTime()).to.be.within(0, 5 * 60_000 - 1);
    const next = await runCli(['next', id, '-n', '3'], { env: db.env });
    expect(next.code, next.stderr).to.equal(0);
    expect(next.stdout).to.contain(String(doc.date)).and.match(/delay 30 s, jitter 5 min/);
    const bad = await runCli(['task', 'add', '--worker', 'w', '--job', 'j', '--every', '1h', '--jitter', '2h', '--date', '2030-01-01'], { env: db.env });
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim().split('\n')).to.have.length(1);
    expect(bad.stderr).to.match(/jitter/);
  });
});

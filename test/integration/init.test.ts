/**
 * `after init` and the admin operations behind `after task ...` / `after status`, against
 * the embedded server, or the CouchDB named by COUCHDB_URL.
 */
import { expect } from 'chai';
import { AfterError } from '../../src/errors';
import { listTasks, statusCounts } from '../../src/store/for-operators/task-queries';
import { createTask, deleteTask, getTask, updateTask } from '../../src/store/for-operators/tasks';
import type { Connection } from '../../src/store/connection';
import { DESIGN_DOC_ID, MANGO_INDEXES, REVS_LIMIT, STATS_DOC_ID, UNREACHABLE, VALIDATE_DOC_ID } from '../../src/store/schema';
import type { TaskDoc } from '../../src/types';
import { runCli, useSuiteDb, waitFor, type TestDb } from '../helpers/index';

describe('after init', function () {
  const db = useSuiteDb({ init: false });

  it('creates the databases, the indexes and the design documents, with no JavaScript on the write path', async function () {
    expect((await db.request('GET', '')).status, 'database before init').to.equal(404);
    expect((await db.request('GET', `../${db.dbName}_control`)).status, 'control database before init').to.equal(404);

    const report = await db.init();

    expect(report.changed).to.equal(true);
    expect(report.lines.join('\n')).to.not.match(/\/\/[^/\s]*:[^/\s]*@/, 'a credential in the report');
    expect((await db.request('GET', '')).status).to.equal(200);
    expect((await db.request('GET', `../${db.dbName}_control`)).status, 'the control database').to.equal(200);
    const indexes = (await db.request<{ indexes: Array<{ ddoc: string; name: string }> }>('GET', '_index')).body.indexes;
    const expected = db.kind === 'couchdb' ? [...MANGO_INDEXES, UNREACHABLE] : MANGO_INDEXES;
    expect(indexes.map((i) => `${i.ddoc} ${i.name}`)).to.include.members(expected.map((i) => `_design/${i.ddoc} ${i.name}`));
    const stats = (await db.request<Record<string, any>>('GET', STATS_DOC_ID)).body;
    expect(stats.views.by_worker_status.reduce).to.equal('_count');
    // CouchDB's background indexer reads `autoupdate` at the top of a design document only.
    expect(stats.autoupdate, 'the counts view is built only when read').to.equal(false);
    // no validate_doc_update anywhere unless asked for
    expect((await db.request('GET', VALIDATE_DOC_ID)).status).to.equal(404);
    const design = await db.request<Record<string, any>>('GET', DESIGN_DOC_ID);
    if (db.kind === 'couchdb') {
      expect(design.status, 'CouchDB workers need no design document').to.equal(404);
    } else {
      expect(design.body.filters).to.have.property('by_worker');
      expect(design.body.views).to.have.property('unreachable_by_worker');
      expect(design.body).to.not.have.property('validate_doc_update');
    }
  });

  it('installs the validator with --validate, removes it with --no-validate, and drops the one an older After put in _design/after', async function () {
    await db.init();
    // an older After's design document, with its validator
    const old = await db.request<Record<string, any>>('GET', DESIGN_DOC_ID);
    const validator = 'function (newDoc) { if (newDoc.refuse) { throw({forbidden: "refused"}); } }';
    const written = await db.adminRequest('PUT', DESIGN_DOC_ID, { ...(old.status === 200 ? old.body : {}), validate_doc_update: validator });
    expect(written.status).to.equal(201);
    expect((await db.request('POST', '', { refuse: true })).status).to.equal(403);

    await db.init();
    expect((await db.request('POST', '', { refuse: true })).status, 'the old validator is gone').to.equal(201);

    const installed = await runCli(['init', '--validate'], { env: db.env });
    expect(installed.code, installed.stderr).to.equal(0);
    expect((await db.request('POST', '', { worker: 'w', date: '2013-02-30', job: 'x' })).status).to.equal(403);
    await db.init();
    expect((await db.request('GET', VALIDATE_DOC_ID)).status, 'a plain init leaves an installed validator alone').to.equal(200);
    const removed = await runCli(['init', '--no-validate'], { env: db.env });
    expect(removed.code, removed.stderr).to.equal(0);
    expect((await db.request('GET', VALIDATE_DOC_ID)).status).to.equal(404);
    expect((await db.request('POST', '', { worker: 'w', date: '2013-02-30', job: 'x' })).status).to.equal(201);
  });

  it('applies a validator from the next write on, however its design document is written: _bulk_docs, an edit, a deletion', async function () {
    await db.init();
    // Writes before any validator exists (the embedded server reads validators once, then keeps them).
    expect((await db.request('POST', '', { refuse: 'a' })).status).to.equal(201);
    const refusing = (word: string): string => `function (newDoc) { if (newDoc.refuse === "${word}") { throw({forbidden: "refused ${word}"}); } }`;
    const added = await db.adminRequest('POST', '_bulk_docs', { docs: [{ _id: '_design/refuse', validate_doc_update: refusing('a') }] });
    expect(added.status).to.equal(201);
    const refused = await db.request<{ reason: string }>('POST', '', { refuse: 'a' });
    expect([refused.status, refused.body.reason]).to.deep.equal([403, 'refused a']);

    const current = await db.adminRequest<{ _rev: string }>('GET', '_design/refuse');
    expect((await db.adminRequest('PUT', '_design/refuse', { ...current.body, validate_doc_update: refusing('b') })).status).to.equal(201);
    const bulk = await db.request<Array<{ id: string; error?: string }>>('POST', '_bulk_docs', {
      docs: [{ _id: 'edited-a', refuse: 'a' }, { _id: 'edited-b', refuse: 'b' }],
    });
    const rows = new Map(bulk.body.map((row) => [row.id, row.error ?? 'written']));
    expect(Object.fromEntries(rows)).to.deep.equal({ 'edited-a': 'written', 'edited-b': 'forbidden' });

    const edited = await db.adminRequest<{ _rev: string }>('GET', '_design/refuse');
    expect((await db.adminRequest('DELETE', `_design/refuse?rev=${edited.body._rev}`)).status).to.equal(200);
    // CouchDB drops a deleted design document from its cache by an event of its own, so a write
    // in the same millisecond may still meet it; the embedded server reads its validators anew.
    const afterDeletion = async (): Promise<number> => (await db.request('POST', '', { refuse: 'b' })).status;
    const status = db.kind === 'couchdb' ? await waitFor(async () => ((await afterDeletion()) === 201 ? 201 : undefined), { timeoutMs: 5_000, what: 'a write the deleted validator no longer refuses' }) : await afterDeletion();
    expect(status, 'the deleted validator no longer applies').to.equal(201);
  });

  it('sets a low _revs_limit where the server supports it, and says when it does not', async function () {
    await db.init();
    const report = await db.init();
    const step = report.steps.find((s) => s.what.startsWith('_revs_limit'))!;
    if (db.kind === 'couchdb') {
      expect((await db.request('GET', '_revs_limit')).body).to.equal(REVS_LIMIT);
      expect(step.outcome).to.equal('unchanged');
    } else {
      expect(step.outcome).to.equal('skipped');
      expect(step.detail).to.match(/pouchdb-server/);
    }
  });

  it('serves the worker queries from their indexes (checked with _explain)', async function () {
    await db.init();
    const dueTasks = await db.request<{ index: { name: string } }>('POST', '_explain', {
      selector: { worker: 'nightly', status: 'scheduled', date: { $lte: '2030-01-01T00:00:00.000Z' } },
      sort: [{ worker: 'asc' }, { status: 'asc' }, { date: 'asc' }],
      use_index: ['after-worker-status-date', 'worker-status-date'],
      limit: 100,
    });
    expect(dueTasks.body.index.name).to.equal('worker-status-date');

    const expiredLeases = await db.request<{ index: { name: string } }>('POST', '_explain', {
      selector: { worker: 'nightly', status: 'running', 'lease.expires_at': { $lt: '2030-01-01T00:00:00.000Z' } },
      sort: [{ worker: 'asc' }, { status: 'asc' }, { 'lease.expires_at': 'asc' }],
      use_index: ['after-worker-status-lease', 'worker-status-lease'],
      limit: 100,
    });
    expect(expiredLeases.body.index.name).to.equal('worker-status-lease');
  });

  it('changes nothing when run again: no new revision, every step unchanged or skipped', async function () {
    await db.init();
    const before = await snapshot(db);

    const report = await db.init();

    expect(report.changed).to.equal(false);
    for (const step of report.steps) expect(['unchanged', 'skipped'], step.what).to.include(step.outcome);
    expect(await snapshot(db)).to.deep.equal(before);
  });

  it('rewrites a design document someone changed, once', async function () {
    await db.init();
    const stored = (await db.request<Record<string, any>>('GET', STATS_DOC_ID)).body;
    const tampered = await db.adminRequest('PUT', STATS_DOC_ID, { ...stored, views: { by_worker_status: { map: 'function () {}' } } });
    expect(tampered.status, JSON.stringify(tampered.body)).to.equal(201);

    const fixed = await db.init();
    const again = await db.init();

    expect(fixed.steps.find((s) => s.what === `design document ${STATS_DOC_ID}`)!.outcome).to.equal('updated');
    expect(again.changed).to.equal(false);
    const design = (await db.request<Record<string, any>>('GET', STATS_DOC_ID)).body;
    expect(design.views.by_worker_status.reduce).to.equal('_count');
  });

  it("gives the by_worker filter a worker's tasks and every deletion (pouchdb-server, whose _selector feeds crash it)", async function () {
    if (db.kind === 'couchdb') this.skip();
    await db.init();
    const mine = await db.request<{ id: string; rev: string }>('POST', '', { worker: 'filter-a', date: '2030-01-01', job: 'succeeds' });
    await db.request('POST', '', { worker: 'filter-b', date: '2030-01-01', job: 'succeeds' });
    const theirs = await db.request<{ id: string; rev: string }>('POST', '', { worker: 'filter-b', date: '2030-01-01', job: 'succeeds' });
    await db.request('DELETE', `${theirs.body.id}?rev=${theirs.body.rev}`);

    const changes = await db.request<{ results: Array<{ id: string }> }>('GET', '_changes?filter=after/by_worker&worker=filter-a');

    const tasks = changes.body.results.map((r) => r.id).filter((id) => !id.startsWith('_design/'));
    expect(tasks).to.have.members([mine.body.id, theirs.body.id]);
  });
});

describe('task administration (after task, after status)', function () {
  const db = useSuiteDb();
  let conn: Connection;

  before(function () {
    conn = db.connect();
  });

  after(function () {
    conn?.close();
  });

  it('creates a task as waiting, under a chosen id or a generated one', async function () {
    const chosen = await createTask(conn, { _id: 'invoice-1', worker: 'billing', date: '2030-01-01', job: 'invoice' });
    const generated = await createTask(conn, { worker: 'billing', date: '2030-01-02', job: 'invoice' });

    expect(chosen.id).to.equal('invoice-1');
    expect((await db.request<TaskDoc>('GET', 'invoice-1')).body).to.include({ status: 'waiting', worker: 'billing' });
    expect((await getTask(conn, generated.id)).status).to.equal('waiting');
  });

  it('refuses a second task with the same id and keeps the first', async function () {
    await createTask(conn, { _id: 'once', worker: 'w', date: '2030-01-01', job: 'a' });

    const err = await createTask(conn, { _id: 'once', worker: 'w', date: '2031-01-01', job: 'b' }).catch((e: unknown) => e);

    expect(err).to.be.instanceOf(AfterError);
    expect((err as AfterError).code).to.equal('E_TASK_EXISTS');
    expect((await db.request<TaskDoc>('GET', 'once')).body).to.include({ date: '2030-01-01', job: 'a' });
  });

  it('reports a missing task as E_TASK_NOT_FOUND, also once deleted', async function () {
    await createTask(conn, { _id: 'short-lived', worker: 'w', date: '2030-01-01', job: 'a' });
    await deleteTask(conn, 'short-lived');

    for (const id of ['never-created', 'short-lived']) {
      const err = await getTask(conn, id).catch((e: unknown) => e);
      expect((err as AfterError).code, id).to.equal('E_TASK_NOT_FOUND');
    }
    expect((await db.request('GET', 'short-lived')).status).to.equal(404);
  });

  it('retries an update when someone else changed the task in between', async function () {
    await createTask(conn, { _id: 'contended', worker: 'w', date: '2030-01-01', job: 'a' });
    let calls = 0;

    const updated = await updateTask(conn, 'contended', async (doc) => {
      calls += 1;
      // Another writer gets in between our first read and our write.
      if (calls === 1) await db.request('PUT', 'contended', { ...doc, note: 'written by someone else' });
      return { ...doc, status: 'cancel' };
    });

    const stored = (await db.request<TaskDoc>('GET', 'contended')).body;
    expect(calls).to.equal(2);
    expect(stored).to.include({ status: 'cancel', note: 'written by someone else' });
    expect(stored._rev).to.match(/^3-/).and.equal(updated._rev);
  });

  it('reschedules a task: new date, status reschedule', async function () {
    await createTask(conn, { _id: 'move-me', worker: 'w', date: '2030-01-01', job: 'a', status: 'scheduled' });

    const moved = await updateTask(conn, 'move-me', (doc) => ({ ...doc, status: 'reschedule', date: '2030-02-01T09:00:00Z' }));

    expect(moved).to.include({ status: 'reschedule', date: '2030-02-01T09:00:00Z' });
    expect((await db.request<TaskDoc>('GET', 'move-me')).body._rev).to.equal(moved._rev);
  });

  it('lists tasks by worker, status and date range, sorted by date', async function () {
    await createTask(conn, { _id: 'l3', worker: 'lister', date: '2031-03-01T00:00:00Z', job: 'a' });
    await createTask(conn, { _id: 'l1', worker: 'lister', date: '2031-01-01T00:00:00Z', job: 'a', status: 'done' });
    await createTask(conn, { _id: 'l2', worker: 'lister', date: '2031-02-01T00:00:00Z', job: 'a' });
    await createTask(conn, { _id: 'other', worker: 'someone-else', date: '2031-01-15T00:00:00Z', job: 'a' });

    const ids = (tasks: TaskDoc[]) => tasks.map((t) => t._id);
    expect(ids(await listTasks(conn, { worker: 'lister' }))).to.deep.equal(['l1', 'l2', 'l3']);
    expect(ids(await listTasks(conn, { worker: 'lister', status: 'waiting' }))).to.deep.equal(['l2', 'l3']);
    expect(ids(await listTasks(conn, { worker: 'lister', limit: 2 }))).to.deep.equal(['l1', 'l2']);
    expect(ids(await listTasks(conn, { from: '2031-01-10', to: '2031-02-15' }))).to.deep.equal(['other', 'l2']);
    expect(ids(await listTasks(conn, { status: 'done', from: '2031' }))).to.deep.equal(['l1']);
  });

  it('counts tasks by worker and status', async function () {
    await createTask(conn, { worker: 'counted', date: '2030-01-01', job: 'a' });
    await createTask(conn, { worker: 'counted', date: '2030-01-02', job: 'a' });
    await createTask(conn, { worker: 'counted', date: '2030-01-03', job: 'a', status: 'done' });

    const counts = (await statusCounts(conn)).filter((c) => c.worker === 'counted');

    expect(counts).to.have.deep.members([
      { worker: 'counted', status: 'waiting', count: 2 },
      { worker: 'counted', status: 'done', count: 1 },
    ]);
  });
});

/** update_seq plus every design document's _rev: what a rerun of init must leave alone. */
async function snapshot(db: TestDb): Promise<Record<string, unknown>> {
  const info = await db.request<{ update_seq: unknown; doc_count: number }>('GET', '');
  const ids = [STATS_DOC_ID, ...(db.kind === 'couchdb' ? [`_design/${UNREACHABLE.ddoc}`] : [DESIGN_DOC_ID]), ...MANGO_INDEXES.map((i) => `_design/${i.ddoc}`)];
  const revs: Record<string, unknown> = { update_seq: info.body.update_seq, doc_count: info.body.doc_count };
  for (const id of ids) revs[id] = (await db.request<{ _rev: string }>('GET', id)).body._rev;
  if (db.kind === 'couchdb') revs._revs_limit = (await db.request('GET', '_revs_limit')).body;
  return revs;
}

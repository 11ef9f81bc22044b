/**
 * The TaskStore contract (src/store/types.ts) as one suite that every implementation passes:
 * pouchdb-server and CouchDB (test/integration/store.test.ts) and the in-memory store
 * (test/unit/store-memory.test.ts). Only what the contract promises is asserted: conflicts as
 * results, what each query finds and in which order, what the feed delivers, the control
 * database.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { ChangeBatch, ControlDoc, Feed, TaskStore, WriteOutcome } from '../../src/store/types';
import type { TaskDoc } from '../../src/types';
import { waitFor } from './wait';

/** `open()` gives a store on a database that `after init` prepared, shared by the suite's tests. */
export function taskStoreContract(open: () => Promise<TaskStore>): void {
  const feeds: Feed[] = [];
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((feed) => feed.stop()));
  });
  const tag = (): string => randomBytes(4).toString('hex');

  /** One document through the batch write. */
  async function writeOne(s: TaskStore, doc: TaskDoc): Promise<WriteOutcome> {
    const [outcome] = await s.write([{ doc }]);
    return outcome!;
  }

  async function created(s: TaskStore, doc: TaskDoc): Promise<TaskDoc> {
    const result = await writeOne(s, doc);
    if (result.kind !== 'written') throw new Error(`cannot create ${doc._id}`);
    return result.doc;
  }

  it('reports a stale _rev as a conflict with the task as it is now, and only one of two writes from the same _rev wins', async () => {
    const s = await open();
    const first = await created(s, { _id: `c-${tag()}`, worker: 'w', status: 'waiting' });
    const updated = await writeOne(s, { ...first, status: 'scheduled' });
    expect(updated.kind).to.equal('written');
    if (updated.kind !== 'written') return;
    const stale = await writeOne(s, { ...first, status: 'running' });
    expect(stale).to.deep.include({ kind: 'lost' });
    expect(stale.kind === 'lost' && stale.fresh).to.deep.include({ _rev: updated.doc._rev, status: 'scheduled' });
    const both = await Promise.all([writeOne(s, { ...updated.doc, owner: 'a' }), writeOne(s, { ...updated.doc, owner: 'b' })]);
    const won = both.filter((r) => r.kind === 'written');
    const lost = both.filter((r) => r.kind === 'lost');
    expect(won).to.have.length(1);
    expect(lost).to.have.length(1);
    expect(lost[0]!.kind === 'lost' && lost[0]!.fresh?._rev).to.equal(won[0]!.kind === 'written' && won[0]!.doc._rev);
  });

  it('writes a batch in one call, each document with its own outcome, in the order given', async () => {
    const s = await open();
    const t = tag();
    const a = await created(s, { _id: `b-${t}-a`, worker: 'w', status: 'waiting' });
    const outcomes = await s.write([
      { doc: { ...a, status: 'running' }, lane: 'run', claim: true },
      { doc: { _id: `b-${t}-new`, worker: 'w', status: 'waiting' }, lane: 'background' },
      { doc: { ...a, status: 'done' } },
    ]);
    expect(outcomes.map((o) => o.kind)).to.deep.equal(['written', 'written', 'lost']);
    expect(outcomes[0]!.kind === 'written' && outcomes[0]!.doc).to.include({ _id: a._id, status: 'running' });
    expect(outcomes[2]!.kind === 'lost' && outcomes[2]!.fresh).to.include({ status: 'running' });
    expect(await s.write([])).to.deep.equal([]);
  });

  it('refuses to create a document that exists, and re-creates a deleted one', async () => {
    const s = await open();
    const doc = await created(s, { _id: `x-${tag()}`, worker: 'w' });
    const again = await writeOne(s, { _id: doc._id, worker: 'w' });
    expect(again.kind).to.equal('lost');
    expect(again.kind === 'lost' && again.fresh?._rev).to.equal(doc._rev);
    const gone = await writeOne(s, { _id: doc._id, _rev: doc._rev, _deleted: true });
    expect(gone.kind).to.equal('written');
    const recreated = await writeOne(s, { _id: doc._id, worker: 'w', status: 'waiting' });
    expect(recreated.kind).to.equal('written');
    expect((await s.get(doc._id))?.status).to.equal('waiting');
  });

  it('gets null for a missing or deleted task, and the update seq as a string', async () => {
    const s = await open();
    expect(await s.get('no-such-task')).to.equal(null);
    const doc = await created(s, { _id: `d-${tag()}`, worker: 'w' });
    await writeOne(s, { ...doc, _deleted: true });
    expect(await s.get(doc._id)).to.equal(null);
    expect(await s.updateSeq()).to.be.a('string').and.not.equal('');
  });

  it("finds a worker's tasks of one status up to a date, in date order, page by page", async () => {
    const s = await open();
    const t = tag();
    const worker = `find-${t}`;
    const docs: TaskDoc[] = [
      { _id: `${t}-5`, worker, status: 'waiting', date: '2030-01-05T00:00:00.000Z' },
      { _id: `${t}-1`, worker, status: 'waiting', date: '2030-01-01T00:00:00.000Z' },
      { _id: `${t}-3`, worker, status: 'waiting', date: '2030-01-03T00:00:00.000Z' },
      { _id: `${t}-2`, worker, status: 'waiting', date: '2030-01-02T00:00:00.000Z' },
      { _id: `${t}-4`, worker, status: 'waiting', date: '2030-01-04T00:00:00.000Z' },
      { _id: `${t}-late`, worker, status: 'waiting', date: '2030-02-01T00:00:00.000Z' },
      { _id: `${t}-done`, worker, status: 'done', date: '2030-01-01T12:00:00.000Z' },
      { _id: `${t}-other`, worker: `${worker}-other`, status: 'waiting', date: '2030-01-01T12:00:00.000Z' },
    ];
    await s.write(docs.map((doc) => ({ doc })));
    const pages: string[][] = [];
    let bookmark: string | undefined;
    do {
      const page = await s.findByStatus(worker, 'waiting', '2030-01-31T00:00:00.000Z', 2, bookmark);
      pages.push(page.docs.map((doc) => doc._id));
      bookmark = page.bookmark;
    } while (bookmark !== undefined && pages.length < 10);
    expect(pages.flat()).to.deep.equal([1, 2, 3, 4, 5].map((n) => `${t}-${n}`));
    expect(pages[0]).to.have.length(2);
  });

  it('finds tasks whose lease expired before a time, by status', async () => {
    const s = await open();
    const worker = `lease-${tag()}`;
    const lease = (expires_at: string) => ({ instance: 'i1', expires_at });
    await s.write([
      { doc: { _id: `${worker}-old`, worker, status: 'running', lease: lease('2030-01-01T00:00:00.000Z') } },
      { doc: { _id: `${worker}-new`, worker, status: 'running', lease: lease('2030-01-03T00:00:00.000Z') } },
      { doc: { _id: `${worker}-sched`, worker, status: 'scheduled', lease: lease('2030-01-01T00:00:00.000Z') } },
    ]);
    const expired = await s.findExpiredLeases(worker, 'running', '2030-01-02T00:00:00.000Z', 10);
    expect(expired.map((doc) => doc._id)).to.deep.equal([`${worker}-old`]);
  });

  it('finds the tasks no date or lease query reaches: no status, an unknown one, no date, a run without a lease, a run now', async () => {
    const s = await open();
    const worker = `odd-${tag()}`;
    const docs: TaskDoc[] = [
      { _id: `${worker}-no-status`, worker, date: '2030-01-01' },
      { _id: `${worker}-unknown`, worker, status: 'sleeping', date: '2030-01-01' },
      { _id: `${worker}-object-status`, worker, status: { x: 1 }, date: '2030-01-01' },
      { _id: `${worker}-no-date`, worker, status: 'waiting' },
      { _id: `${worker}-number-date`, worker, status: 'scheduled', date: 20300101 },
      { _id: `${worker}-run-no-lease`, worker, status: 'running', date: '2030-01-01' },
      { _id: `${worker}-fine`, worker, status: 'waiting', date: '2030-01-01' },
      { _id: `${worker}-run-fine`, worker, status: 'running', date: '2030-01-01', lease: { instance: 'i', expires_at: '2030-01-01' } },
      { _id: `${worker}-done-no-date`, worker, status: 'done' },
      { _id: `${worker}-x-other`, worker: `${worker}-other` },
      // Asked to run now, dated far beyond any window: found by no date query in time.
      { _id: `${worker}-run-now`, worker, status: 'waiting', date: '2099-01-01', run_now: '2030-01-01T00:00:00Z' },
      { _id: `${worker}-run-now-held`, worker, status: 'scheduled', date: '2099-01-01', run_now: '2030-01-01T00:00:00Z', lease: { instance: 'i', expires_at: '2099-01-01' } },
      { _id: `${worker}-run-now-done`, worker, status: 'done', date: '2099-01-01', run_now: '2030-01-01T00:00:00Z' },
    ];
    await s.write(docs.map((doc) => ({ doc })));
    const found = (await s.findUnreachable(worker, 100)).map((doc) => doc._id).sort();
    expect(found).to.deep.equal(
      ['no-status', 'unknown', 'object-status', 'no-date', 'number-date', 'run-no-lease', 'run-now', 'run-now-held'].map((n) => `${worker}-${n}`).sort(),
    );
  });

  it('feeds a worker the creation, update and deletion of its tasks and nothing of another worker', async () => {
    const s = await open();
    const worker = `feed-${tag()}`;
    const batches: ChangeBatch[] = [];
    feeds.push(s.follow({ worker, since: await s.updateSeq(), heartbeatMs: 300, onBatch: (batch) => void batches.push(batch) }));
    const seen = (): TaskDoc[] => batches.flatMap((b) => b.docs);
    const mine = await created(s, { _id: `${worker}-mine`, worker, status: 'waiting' });
    await writeOne(s, { _id: `${worker}-theirs`, worker: `${worker}-other`, status: 'waiting' });
    const updated = await writeOne(s, { ...mine, status: 'scheduled' });
    if (updated.kind !== 'written') throw new Error('update failed');
    // as a user deletes: the tombstone keeps no `worker`
    await writeOne(s, { _id: updated.doc._id, _rev: updated.doc._rev, _deleted: true });
    await waitFor(async () => seen().some((doc) => doc._deleted), { timeoutMs: 10_000, what: 'the deletion in the feed' });
    expect(seen().every((doc) => doc._id === `${worker}-mine`)).to.equal(true, JSON.stringify(seen()));
    expect(seen().at(-1)).to.include({ _id: `${worker}-mine`, _deleted: true });
    expect(batches.every((b) => typeof b.lastSeq === 'string')).to.equal(true);
  });

  it("leaves out of an instance's feed its own claims and finished tasks, and shows a user's change to them", async () => {
    const s = await open();
    const worker = `echo-${tag()}`;
    const me = `host:1:${tag()}`;
    const lease = (instance: string) => ({ instance, expires_at: '2030-01-01T00:00:00.000Z' });
    const batches: ChangeBatch[] = [];
    feeds.push(s.follow({ worker, instance: me, since: await s.updateSeq(), heartbeatMs: 300, onBatch: (batch) => void batches.push(batch) }));
    const seen = (): string[] => batches.flatMap((b) => b.docs.map((doc) => `${doc._id}:${String(doc.status)}`));
    const claimed = await created(s, { _id: `${worker}-claimed`, worker, status: 'running', lease: lease(me) });
    await created(s, { _id: `${worker}-done`, worker, status: 'done' });
    await created(s, { _id: `${worker}-theirs`, worker, status: 'running', lease: lease('host:2:other') });
    await created(s, { _id: `${worker}-no-status`, worker });
    await writeOne(s, { ...claimed, status: 'cancel' });
    await waitFor(async () => seen().includes(`${worker}-claimed:cancel`), { timeoutMs: 10_000, what: "the user's cancel in the feed" });
    expect(seen()).to.include(`${worker}-theirs:running`);
    expect(seen(), 'a task without a status (it means waiting)').to.include(`${worker}-no-status:undefined`);
    expect(seen()).not.to.include(`${worker}-claimed:running`);
    expect(seen()).not.to.include(`${worker}-done:done`);
  });

  it('gets several documents at once, whatever their worker: null for a missing or deleted one', async () => {
    const s = await open();
    const t = tag();
    const a = await created(s, { _id: `many-${t}-a`, worker: 'w1', status: 'done' });
    await created(s, { _id: `many-${t}-b`, worker: 'w2', status: 'waiting' });
    const gone = await created(s, { _id: `many-${t}-gone`, worker: 'w1' });
    await writeOne(s, { _id: gone._id, _rev: gone._rev, _deleted: true });
    const ids = [`many-${t}-b`, `many-${t}-missing`, a._id, gone._id];
    const found = await s.getMany(ids);
    expect([...found.keys()].sort()).to.deep.equal([...ids].sort());
    expect(found.get(a._id)).to.include({ _id: a._id, status: 'done', worker: 'w1' });
    expect(found.get(`many-${t}-b`)).to.include({ worker: 'w2', status: 'waiting' });
    expect(found.get(`many-${t}-missing`)).to.equal(null);
    expect(found.get(gone._id)).to.equal(null);
    expect((await s.getMany([])).size).to.equal(0);
  });

  it('follows named documents of any worker, their deletion included, and nothing else', async () => {
    const s = await open();
    const t = tag();
    const watched = [`docs-${t}-a`, `docs-${t}-b`, `docs-${t}-later`];
    const batches: ChangeBatch[] = [];
    feeds.push(s.followDocs({ ids: watched, since: await s.updateSeq(), heartbeatMs: 300, onBatch: (batch) => void batches.push(batch) }));
    const seen = (): TaskDoc[] => batches.flatMap((b) => b.docs);
    const a = await created(s, { _id: `docs-${t}-a`, worker: 'w1', status: 'waiting' });
    await created(s, { _id: `docs-${t}-other`, worker: 'w1', status: 'waiting' });
    await created(s, { _id: `docs-${t}-b`, worker: 'w2', status: 'running' });
    const done = await writeOne(s, { ...a, status: 'done' });
    if (done.kind !== 'written') throw new Error('update failed');
    await created(s, { _id: `docs-${t}-later`, worker: 'w3' });
    await writeOne(s, { _id: done.doc._id, _rev: done.doc._rev, _deleted: true });
    await waitFor(async () => seen().some((doc) => doc._id === a._id && doc._deleted) && seen().some((doc) => doc._id === `docs-${t}-later`), {
      timeoutMs: 10_000,
      what: 'the watched changes in the feed',
    });
    expect(seen().every((doc) => watched.includes(doc._id))).to.equal(true, JSON.stringify(seen().map((doc) => doc._id)));
    expect(seen().some((doc) => doc._id === `docs-${t}-b` && doc.worker === 'w2')).to.equal(true);
  });

  it('keeps control documents: created once, updated with their _rev, removed, all in its feed', async () => {
    const s = await open();
    const id = `pause:contract-${tag()}`;
    const docs: ControlDoc[] = [];
    const { seq } = await s.control.snapshot();
    feeds.push(s.control.follow({ since: seq, heartbeatMs: 300, onBatch: (batch) => void docs.push(...batch.docs) }));
    const first = await s.control.put({ _id: id, paused: true });
    if (!first.ok) throw new Error('control put failed');
    expect(await s.control.put({ _id: id, paused: false })).to.deep.equal({ ok: false, conflict: true });
    const second = await s.control.put({ _id: id, _rev: first.rev, paused: false });
    expect(second.ok).to.equal(true);
    expect((await s.control.get(id))?.paused).to.equal(false);
    expect((await s.control.snapshot()).docs.map((doc) => doc._id)).to.include(id);
    expect(await s.control.remove(id, first.rev)).to.equal(false);
    if (second.ok) expect(await s.control.remove(id, second.rev)).to.equal(true);
    expect(await s.control.get(id)).to.equal(null);
    await waitFor(async () => docs.some((doc) => doc._id === id && doc._deleted), { timeoutMs: 10_000, what: 'the removal in the control feed' });
  });
}

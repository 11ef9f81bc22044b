/**
 * docs/spec.md §7 "Claims in a cluster": which branches a claim that got 202 deletes as it stands
 * down, from the leaves of every copy (`open_revs=all`, `r` = n), against a stand-in cluster.
 */
import { expect } from 'chai';
import { CouchRequestError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { dropIfOvertaken, standDown, sweepStaleBranches, winningLeaf } from '../../src/store/for-workers/cluster-confirm';
import type { RequestOptions, Response } from '../../src/store/connection';
import { ClusterWrites } from '../../src/store/for-workers/cluster-writes';
import type { WriteAnswer } from '../../src/store/for-workers/write-outcomes';

type Leaf = Record<string, unknown>;

/** A cluster that answers the `open_revs=all` read with `leaves` and records every request. */
function fakeCluster(leaves: Leaf[] | 'missing') {
  const requests: RequestOptions[] = [];
  const request = async <T>(options: RequestOptions): Promise<Response<T>> => {
    requests.push(options);
    if (options.method === 'DELETE') return { status: 200, body: { ok: true } as T, headers: {} };
    if (leaves === 'missing') throw new CouchRequestError('E_DB_HTTP', 'not found', 404, 'missing');
    return { status: 200, body: leaves.map((ok) => ({ ok })) as T, headers: {} };
  };
  const deleted = (): unknown[] => requests.filter((r) => r.method === 'DELETE').map((r) => r.qs?.rev);
  return { request, requests, deleted };
}

/** A leaf at generation 2 written from the parent `1-p`, or further down its branch. */
function leaf(rev: string, fields: Leaf = {}, branch: string[] = []): Leaf {
  const [gen, id] = rev.split('-') as [string, string];
  return { _id: 'task/1', _rev: rev, _revisions: { start: Number(gen), ids: [id, ...branch, 'p'] }, status: 'running', ...fields };
}

const written = { _id: 'task/1', _rev: '2-b', status: 'running' };

describe('store: a claim that got 202 stands down', () => {
  it('reads the leaves of every copy', async () => {
    const db = fakeCluster([leaf('2-b')]);
    await standDown(db.request, written, 3, silentLogger());
    expect(db.requests[0]).to.deep.include({ path: 'task%2F1', qs: { open_revs: 'all', revs: true, r: 3 } });
  });

  const cases: Array<{ name: string; leaves: Leaf[] | 'missing'; deletes: string[] }> = [
    { name: 'no rival seen (one may still come): our branch is kept, its lease decides', leaves: [leaf('2-b')], deletes: [] },
    { name: 'a rival that sorts lower: our branch is kept, so one branch survives whoever owns it', leaves: [leaf('2-b'), leaf('2-a')], deletes: [] },
    { name: 'a rival that sorts higher: our branch is deleted', leaves: [leaf('2-b'), leaf('2-c')], deletes: ['2-b'] },
    { name: 'a higher rival that already stood down and deleted its branch still counts', leaves: [leaf('2-b'), leaf('3-d', { _deleted: true }, ['c'])], deletes: ['2-b'] },
    { name: 'a rival already written on (its owner ran) and sorting higher', leaves: [leaf('2-b'), leaf('3-e', { status: 'done' }, ['c'])], deletes: ['2-b'] },
    { name: 'someone wrote on top of ours: nothing deleted', leaves: [leaf('3-later', { status: 'cancel' }, ['b'])], deletes: [] },
    { name: 'the document is gone: nothing deleted', leaves: 'missing', deletes: [] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const db = fakeCluster(c.leaves);
      await standDown(db.request, written, 3, silentLogger());
      expect(db.deleted()).to.deep.equal(c.deletes);
    });
  }

  it('says whether it kept its branch, to be looked at again', async () => {
    expect(await standDown(fakeCluster([leaf('2-b'), leaf('2-a')]).request, written, 3, silentLogger())).to.equal(true);
    expect(await standDown(fakeCluster([leaf('2-b'), leaf('2-c')]).request, written, 3, silentLogger())).to.equal(false);
  });

  it('a kept branch is deleted once a rival branch has grown past it, and only then', async () => {
    const waiting = fakeCluster([leaf('2-b'), leaf('2-a')]);
    expect(await dropIfOvertaken(waiting.request, written, 3, silentLogger())).to.equal(false);
    expect(waiting.deleted()).to.deep.equal([]);
    const overtaken = fakeCluster([leaf('2-b'), leaf('3-f', { status: 'done' }, ['a'])]);
    expect(await dropIfOvertaken(overtaken.request, written, 3, silentLogger())).to.equal(true);
    expect(overtaken.deleted()).to.deep.equal(['2-b']);
    const writtenOn = fakeCluster([leaf('3-g', {}, ['b']), leaf('2-a')]);
    expect(await dropIfOvertaken(writtenOn.request, written, 3, silentLogger()), 'taken over on our branch').to.equal(true);
    expect(writtenOn.deleted()).to.deep.equal([]);
  });

  it('three writers, one copy each: only the highest keeps its branch, so the task is never lost', async () => {
    const leaves = [leaf('2-a'), leaf('2-b'), leaf('2-c')];
    const deleted: unknown[] = [];
    for (const rev of ['2-a', '2-b', '2-c']) {
      const db = fakeCluster(leaves);
      await standDown(db.request, { ...written, _rev: rev }, 3, silentLogger());
      deleted.push(...db.deleted());
    }
    expect(deleted).to.deep.equal(['2-a', '2-b']);
  });
});

describe('store: clearing stale branches once a task left running', () => {
  it('deletes the claims and holds left on other branches, and nothing else', async () => {
    const db = fakeCluster([
      leaf('3-done', { status: 'done' }, ['a']),
      leaf('2-b'),
      leaf('2-c', { status: 'scheduled' }),
      leaf('2-d', { status: 'cancel' }),
      leaf('3-x', { _deleted: true, status: undefined }, ['e']),
    ]);
    await sweepStaleBranches(db.request, { _id: 'task/1', _rev: '3-done', status: 'done' }, 3, silentLogger());
    expect(db.deleted()).to.deep.equal(['2-b', '2-c']);
  });
});

describe('store: the winning revision over every copy', () => {
  it('prefers a live leaf, then the longest branch, then the highest revision id', () => {
    const pick = (leaves: Leaf[]) => winningLeaf(leaves as never[]);
    expect(pick([leaf('2-b'), leaf('3-a', { status: 'done' }, ['c'])])?._rev, 'longest').to.equal('3-a');
    expect(pick([leaf('2-b'), leaf('2-c')])?._rev, 'highest id').to.equal('2-c');
    expect(pick([leaf('2-b'), leaf('3-z', { _deleted: true }, ['c'])])?._rev, 'live first').to.equal('2-b');
    expect(pick([leaf('3-z', { _deleted: true }, ['c'])]), 'all deleted').to.equal(null);
    expect(pick([leaf('2-b')])).not.to.have.property('_revisions');
  });
});

/** Lets pending promise callbacks run until `done()` holds (a few turns at most). */
async function waitUntil(done: () => boolean): Promise<void> {
  for (let turn = 0; turn < 50 && !done(); turn++) await new Promise((resolve) => setImmediate(resolve));
}

describe('store: a cluster store leaves no conflict behind (ClusterWrites)', () => {
  const bulk = (rows: Array<Record<string, unknown>>, status = 201) => ({ status, rows });

  it('a rival branch seen in the feed beside our quorum write is swept once our write takes the task out of running', async () => {
    // After our finish, the leaves are our branch (3-f, done) and the rival's claim that stood
    // down but kept its higher branch (2-z).
    const db = fakeCluster([leaf('3-f', { status: 'done' }, ['a']), leaf('2-z', { lease: { instance: 'rival' } })]);
    const cluster = new ClusterWrites(db.request, 3, silentLogger());
    const claim = { _id: 'task/1', _rev: '1-p', status: 'running' };
    await cluster.settle([claim], bulk([{ id: 'task/1', rev: '2-a' }]), ['claim'], [{ ok: true, doc: { ...claim, _rev: '2-a' } }]);
    // The feed shows the rival's branch as the winner (same generation, higher id).
    cluster.noticeRivals([{ _id: 'task/1', _rev: '2-z', status: 'running' }]);
    const finish = { _id: 'task/1', _rev: '2-a', status: 'done' };
    await cluster.settle([finish], bulk([{ id: 'task/1', rev: '3-f' }]), ['plain'], [{ ok: true, doc: { ...finish, _rev: '3-f' } }]);
    await waitUntil(() => db.deleted().length > 0);
    expect(db.deleted()).to.deep.equal(['2-z']);
    await cluster.close();
  });

  it('without a rival seen, a finish sweeps nothing', async () => {
    const db = fakeCluster([leaf('2-a')]);
    const cluster = new ClusterWrites(db.request, 3, silentLogger());
    const claim = { _id: 'task/1', _rev: '1-p', status: 'running' };
    await cluster.settle([claim], bulk([{ id: 'task/1', rev: '2-a' }]), ['claim'], [{ ok: true, doc: { ...claim, _rev: '2-a' } }]);
    cluster.noticeRivals([{ _id: 'task/1', _rev: '2-a', status: 'running' }]);
    const finish = { _id: 'task/1', _rev: '2-a', status: 'done' };
    await cluster.settle([finish], bulk([{ id: 'task/1', rev: '3-f' }]), ['plain'], [{ ok: true, doc: { ...finish, _rev: '3-f' } }]);
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(db.requests).to.deep.equal([]);
    await cluster.close();
  });

  it('a branch kept after standing down gets a last look when the store closes: deleted once overtaken', async () => {
    // Our claim 2-b got 202 and sorts highest: kept. By the time the store closes, the owner's
    // branch (2-a) has grown to 3-f.
    let leaves: Leaf[] = [leaf('2-b'), leaf('2-a')];
    const requests: RequestOptions[] = [];
    const request = async <T>(options: RequestOptions): Promise<Response<T>> => {
      requests.push(options);
      if (options.method === 'DELETE') return { status: 200, body: { ok: true } as T, headers: {} };
      return { status: 200, body: leaves.map((ok) => ({ ok })) as T, headers: {} };
    };
    const cluster = new ClusterWrites(request, 3, silentLogger());
    const claim = { _id: 'task/1', _rev: '1-p', status: 'running' };
    const answers: WriteAnswer[] = [{ ok: true, doc: { ...claim, _rev: '2-b' } }];
    await cluster.settle([claim], bulk([{ id: 'task/1', rev: '2-b', accepted: true }], 202), ['claim'], answers);
    expect(answers[0]).to.deep.equal({ ok: false, conflict: true, contestedRev: '2-b' });
    leaves = [leaf('2-b'), leaf('3-f', { status: 'done' }, ['a'])];
    await cluster.close();
    expect(requests.filter((r) => r.method === 'DELETE').map((r) => r.qs?.rev)).to.deep.equal(['2-b']);
  });
});

import { expect } from 'chai';
import { CouchRequestError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { confirmClusterWrite } from '../../src/store/cluster-confirm';
import type { RequestOptions, Response } from '../../src/store/connection';

/** A database that answers the confirming read with `current` and records every request. */
function fakeCluster(current: Record<string, unknown> | 'missing') {
  const requests: RequestOptions[] = [];
  const request = async <T>(options: RequestOptions): Promise<Response<T>> => {
    requests.push(options);
    if (options.method === 'DELETE') return { status: 200, body: { ok: true } as T, headers: {} };
    if (current === 'missing') throw new CouchRequestError('E_DB_HTTP', 'not found', 404, 'deleted');
    return { status: 200, body: current as T, headers: {} };
  };
  return { request, requests };
}

const written = { _id: 'task/1', _rev: '2-ours', status: 'running' };

describe('store: confirming a 202 write in a cluster', () => {
  it('reads every copy with conflicts=true', async () => {
    const db = fakeCluster({ _id: 'task/1', _rev: '2-ours' });
    await confirmClusterWrite(db.request, written, 3, silentLogger());
    expect(db.requests[0]).to.deep.include({ path: 'task%2F1', qs: { conflicts: true, r: 3 } });
  });

  const cases = [
    { name: 'ours wins alone: ours', current: { _rev: '2-ours' }, won: true, deletes: false },
    { name: 'ours won but another branch exists: not ours, nothing deleted', current: { _rev: '2-ours', _conflicts: ['2-theirs'] }, won: false, deletes: false },
    { name: 'ours lost to a conflicting branch: not ours, our branch deleted', current: { _rev: '2-theirs', _conflicts: ['2-ours'] }, won: false, deletes: true },
    { name: 'someone wrote after ours: not ours', current: { _rev: '3-later' }, won: false, deletes: false },
    { name: 'deleted meanwhile: not ours', current: 'missing' as const, won: false, deletes: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const db = fakeCluster(c.current === 'missing' ? 'missing' : { _id: 'task/1', ...c.current });
      expect(await confirmClusterWrite(db.request, written, 3, silentLogger())).to.equal(c.won);
      const deletes = db.requests.filter((r) => r.method === 'DELETE');
      expect(deletes).to.deep.equal(c.deletes ? [{ method: 'DELETE', path: 'task%2F1', qs: { rev: '2-ours' } }] : []);
    });
  }
});

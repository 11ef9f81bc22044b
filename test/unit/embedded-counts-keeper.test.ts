/**
 * The counts the embedded server keeps as tasks change: each change counted once, a task that
 * changes status leaves its old count, a deleted one leaves for good, design documents and
 * documents that are not tasks are not counted, and what is written is exactly the counts.
 */
import { expect } from 'chai';
import { COUNTS_DOC_ID, CountsKeeper, type CountableDb } from '../../src/embedded/counts-keeper';

type Change = { id: string; deleted?: boolean; doc?: { worker?: unknown; status?: unknown } };

function database() {
  const log: Change[] = [];
  const written: Array<Record<string, unknown>> = [];
  const db: CountableDb = {
    async changes({ since, limit }) {
      const from = Number(since);
      return { results: log.slice(from, from + limit), last_seq: Math.min(log.length, from + limit) };
    },
    async get() {
      throw new Error('missing');
    },
    async put(doc) {
      written.push(doc);
      return { rev: `${written.length}-x` };
    },
  };
  return { db, log, written, counts: () => (written[written.length - 1]!.counts as Array<[string, string, number]>).slice().sort() };
}

describe('embedded server: counts kept as tasks change', () => {
  it('counts each task once, under its status now', async () => {
    const { db, log, written, counts } = database();
    const keeper = new CountsKeeper(db);
    log.push({ id: 'a', doc: { worker: 'mailer', status: 'waiting' } }, { id: 'b', doc: { worker: 'mailer' } }, { id: 'c', doc: { worker: 'billing', status: 'done' } });
    log.push({ id: '_design/after-lists', doc: {} }, { id: 'notes', doc: { status: 'done' } });
    await keeper.catchUp();
    expect(counts()).to.deep.equal([['billing', 'done', 1], ['mailer', 'waiting', 2]]);
    expect(written[0]).to.include({ _id: COUNTS_DOC_ID, seq: 5 });

    log.push({ id: 'a', doc: { worker: 'mailer', status: 'running' } }, { id: 'a', doc: { worker: 'mailer', status: 'done' } }, { id: 'c', deleted: true });
    await keeper.catchUp();
    expect(counts()).to.deep.equal([['mailer', 'done', 1], ['mailer', 'waiting', 1]]);
    expect(written[1]).to.include({ _rev: '1-x', seq: 8 });

    await keeper.catchUp();
    expect(written, 'no change: nothing written').to.have.length(2);
  });

  it('reads a long history in pages', async () => {
    const { db, log, counts } = database();
    for (let i = 0; i < 4500; i++) log.push({ id: `t${i}`, doc: { worker: 'bulk', status: i % 3 === 0 ? 'error' : 'waiting' } });
    await new CountsKeeper(db).catchUp();
    expect(counts()).to.deep.equal([['bulk', 'error', 1500], ['bulk', 'waiting', 3000]]);
  });
});

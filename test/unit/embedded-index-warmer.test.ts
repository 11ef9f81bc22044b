/**
 * When the embedded server brings the dashboard's views up to date: once a database has been
 * quiet for one look, at the latest every 15 looks while it keeps changing, never for a
 * database whose views are up to date, only After's own `_design/after-*` views, and only while
 * someone reads them (the counts are kept whether or not).
 */
import { expect } from 'chai';
import { startIndexWarmer, type WarmableDb } from '../../src/embedded/index-warmer';

function database() {
  const db = {
    seq: 0,
    queried: [] as string[],
    /** The sequences the counts were caught up at. */
    counted: [] as number[],
    async info() {
      return { update_seq: db.seq };
    },
    async allDocs() {
      return {
        rows: [
          { id: '_design/after-lists', doc: { _id: '_design/after-lists', language: 'javascript', views: { by_status: { map: 'function (doc) {}' }, by_job: { map: 'function (doc) {}' } } } },
          { id: '_design/after-status-date', doc: { _id: '_design/after-status-date', language: 'query', views: { x: { map: { fields: {} } } } } },
        ],
      };
    },
    async query(view: string) {
      db.queried.push(`${view}@${db.seq}`);
      return {};
    },
    async changes() {
      db.counted.push(db.seq);
      return { results: [], last_seq: db.seq };
    },
    async get(): Promise<{ _rev?: string }> {
      throw Object.assign(new Error('missing'), { status: 404 });
    },
    async put() {
      return { rev: '1-a' };
    },
  };
  return db;
}

describe('embedded server: keeping the dashboard\'s views warm', () => {
  it('warms a quiet database once, waits while it changes, and warms a busy one every 15 looks', async () => {
    const db = database();
    const warmer = startIndexWarmer({ intervalMs: 0, listDatabases: async () => ['tasks'], openDatabase: async () => db as unknown as WarmableDb, log: () => undefined });
    await warmer.runOnce();
    expect(db.queried, 'first sight counts as moving').to.deep.equal([]);
    await warmer.runOnce();
    expect(db.queried, 'quiet: both JavaScript views, not the Mango index').to.deep.equal(['after-lists/by_status@0', 'after-lists/by_job@0']);
    await warmer.runOnce();
    expect(db.queried, 'up to date: nothing').to.have.length(2);

    db.queried = [];
    for (let look = 1; look <= 14; look++) {
      db.seq += 100;
      await warmer.runOnce();
    }
    expect(db.queried, 'a burst is left alone').to.deep.equal([]);
    db.seq += 100;
    await warmer.runOnce();
    expect(db.queried, 'busy for 15 looks: warmed anyway').to.deep.equal(['after-lists/by_status@1500', 'after-lists/by_job@1500']);
    db.queried = [];
    await warmer.runOnce();
    expect(db.queried, 'then quiet, and up to date').to.deep.equal([]);
    await warmer.stop();
  });

  it('keeps the views of a database nobody reads as they are, and its counts up to date; warms them once someone reads them', async () => {
    const db = database();
    let read = false;
    const warmer = startIndexWarmer({ intervalMs: 0, listDatabases: async () => ['tasks'], openDatabase: async () => db as unknown as WarmableDb, readRecently: () => read, log: () => undefined });
    await warmer.runOnce();
    db.seq += 3000;
    await warmer.runOnce();
    await warmer.runOnce();
    expect(db.queried, 'nobody reads: no indexing').to.deep.equal([]);
    expect(db.counted.at(-1), 'the counts follow').to.equal(3000);
    const counts = db.counted.length;
    await warmer.runOnce();
    expect(db.counted, 'counted once per change of the sequence').to.have.length(counts);

    read = true;
    await warmer.runOnce();
    expect(db.queried, 'read lately: warmed').to.deep.equal(['after-lists/by_status@3000', 'after-lists/by_job@3000']);
    await warmer.stop();
  });
});

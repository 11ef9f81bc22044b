import { expect } from 'chai';
import { changesRequest, feedShows, toBatch } from '../../src/store/changes-request';
import { BY_WORKER_FILTER_SOURCE } from '../../src/store/for-operators/init';
import type { FeedOptions } from '../../src/store/types';
import type { TaskDoc } from '../../src/types';

const options: FeedOptions = { worker: 'nightly', since: 'now', heartbeatMs: 5000, batchSize: 50, onBatch: () => undefined };

describe('store: changes requests', () => {
  it('asks CouchDB for deletions and for the worker\'s unfinished tasks, but its own claims, with a _selector filter', () => {
    const req = changesRequest('couchdb', { ...options, instance: 'host:1:abc' }, '12-abc');
    expect(req.method).to.equal('POST');
    expect(req.qs).to.deep.include({ feed: 'longpoll', since: '12-abc', include_docs: true, limit: 50, heartbeat: 5000, filter: '_selector' });
    expect(req.body).to.deep.equal({
      selector: {
        $or: [
          { _deleted: true },
          { worker: 'nightly', status: { $exists: false } },
          { worker: 'nightly', status: { $nin: ['done', 'error', 'canceled'] }, $nor: [{ 'lease.instance': 'host:1:abc', status: 'running' }] },
        ],
      },
    });
  });

  it('never sends pouchdb-server a _selector filter (it crashes 4.2), but the design filter, with the instance', () => {
    const req = changesRequest('pouchdb-server', { ...options, instance: 'host:1:abc' }, '7');
    expect(req.method).to.equal('GET');
    expect(req.qs).to.deep.include({ filter: 'after/by_worker', worker: 'nightly', instance: 'host:1:abc', since: '7' });
    expect(JSON.stringify(req)).not.to.include('_selector');
    expect(req.body).to.equal(undefined);
  });

  describe('which changes the worker feed shows (the in-memory rule, and the filter pouchdb-server runs)', () => {
    const me = 'host:1:me';
    const lease = (instance: string) => ({ instance, expires_at: '2030-01-01T00:00:00.000Z' });
    const designFilter = new Function(`return (${BY_WORKER_FILTER_SOURCE});`)() as (doc: TaskDoc, req: { query: Record<string, string> }) => boolean;
    const cases: Array<[string, TaskDoc, boolean]> = [
      ['a new task', { _id: 'a', worker: 'nightly', status: 'waiting' }, true],
      ['a task with no status', { _id: 'a', worker: 'nightly' }, true],
      ["another worker's task", { _id: 'a', worker: 'other', status: 'waiting' }, false],
      ['a deletion (no worker in the tombstone)', { _id: 'a', _deleted: true }, true],
      ['our own claim', { _id: 'a', worker: 'nightly', status: 'running', lease: lease(me) }, false],
      ['our own schedule (a user writes run_now on it)', { _id: 'a', worker: 'nightly', status: 'scheduled', lease: lease(me) }, true],
      ["another instance's claim", { _id: 'a', worker: 'nightly', status: 'running', lease: lease('host:2:other') }, true],
      ['a user\'s cancel of our run (our lease kept)', { _id: 'a', worker: 'nightly', status: 'cancel', lease: lease(me) }, true],
      ['a user\'s pause of our run', { _id: 'a', worker: 'nightly', status: 'paused', lease: lease(me) }, true],
      ['a user resuming our run (waiting, our lease kept)', { _id: 'a', worker: 'nightly', status: 'waiting', lease: lease(me) }, true],
      ['a task done', { _id: 'a', worker: 'nightly', status: 'done' }, false],
      ['a task in error', { _id: 'a', worker: 'nightly', status: 'error' }, false],
      ['a task canceled', { _id: 'a', worker: 'nightly', status: 'canceled' }, false],
      ['a lease that is not an object', { _id: 'a', worker: 'nightly', status: 'running', lease: me as unknown as undefined }, true],
    ];
    for (const [name, doc, shown] of cases) {
      it(`${name}: ${shown ? 'shown' : 'left out'}`, () => {
        expect(feedShows(doc, 'nightly', me), 'feedShows').to.equal(shown);
        expect(designFilter(doc, { query: { worker: 'nightly', instance: me } }), 'the pouchdb-server filter').to.equal(shown);
      });
    }
    it('without an instance, its own claims are shown like any other', () => {
      const claim = { _id: 'a', worker: 'nightly', status: 'running', lease: lease(me) };
      expect(feedShows(claim, 'nightly')).to.equal(true);
      expect(designFilter(claim, { query: { worker: 'nightly' } })).to.equal(true);
    });
  });

  it('turns a response into documents and a verbatim seq', () => {
    const batch = toBatch({
      results: [
        { id: 'a', seq: 3, doc: { _id: 'a', _rev: '1-x', worker: 'nightly' } },
        { id: 'b', seq: 4, deleted: true },
      ],
      last_seq: 4,
    }, '2');
    expect(batch).to.deep.equal({ docs: [{ _id: 'a', _rev: '1-x', worker: 'nightly' }, { _id: 'b', _deleted: true }], lastSeq: '4' });
    expect(toBatch({ results: [] }, '9-opaque').lastSeq).to.equal('9-opaque');
  });
});

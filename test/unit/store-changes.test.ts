import { expect } from 'chai';
import { changesRequest, toBatch } from '../../src/store/changes-request';
import type { FeedOptions } from '../../src/store/types';

const options: FeedOptions = { worker: 'nightly', since: 'now', heartbeatMs: 5000, batchSize: 50, onBatch: () => undefined };

describe('store: changes requests', () => {
  it('asks CouchDB for the worker and for deletions with a _selector filter', () => {
    const req = changesRequest('couchdb', options, '12-abc');
    expect(req.method).to.equal('POST');
    expect(req.qs).to.deep.include({ feed: 'longpoll', since: '12-abc', include_docs: true, limit: 50, heartbeat: 5000, filter: '_selector' });
    expect(req.body).to.deep.equal({ selector: { $or: [{ worker: 'nightly' }, { _deleted: true }] } });
  });

  it('never sends pouchdb-server a _selector filter (it crashes 4.2), but the design filter', () => {
    const req = changesRequest('pouchdb-server', options, '7');
    expect(req.method).to.equal('GET');
    expect(req.qs).to.deep.include({ filter: 'after/by_worker', worker: 'nightly', since: '7' });
    expect(JSON.stringify(req)).not.to.include('_selector');
    expect(req.body).to.equal(undefined);
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

import { expect } from 'chai';
import { CouchRequestError } from '../../src/errors';
import { networkCause, requestError, type FailedRequest } from '../../src/store/request-errors';

const base: FailedRequest = { method: 'GET', path: '/tasks/abc', displayUrl: 'http://127.0.0.1:5984', dbName: 'tasks' };

describe('store: request errors', () => {
  const cases: Array<{ name: string; failed: Partial<FailedRequest>; code: string; transient: boolean; mentions: RegExp }> = [
    { name: 'no response', failed: { networkCause: 'ECONNREFUSED' }, code: 'E_DB_UNREACHABLE', transient: true, mentions: /ECONNREFUSED.*after db start/ },
    { name: '401', failed: { status: 401, error: 'unauthorized', reason: 'Name or password is incorrect.' }, code: 'E_DB_AUTH', transient: false, mentions: /couchdb.username/ },
    { name: '403 unauthorized', failed: { status: 403, error: 'unauthorized' }, code: 'E_DB_AUTH', transient: false, mentions: /credentials/ },
    { name: '403 from validate_doc_update', failed: { method: 'PUT', status: 403, error: 'forbidden', reason: 'only admins may' }, code: 'E_FORBIDDEN', transient: false, mentions: /only admins may/ },
    { name: 'missing database (CouchDB)', failed: { status: 404, error: 'not_found', reason: 'Database does not exist.' }, code: 'E_DB_MISSING', transient: false, mentions: /'tasks'.*after init/ },
    { name: 'missing database (pouchdb-server)', failed: { status: 404, error: 'not_found', reason: 'no_db_file' }, code: 'E_DB_MISSING', transient: false, mentions: /after init/ },
    { name: 'missing document', failed: { status: 404, error: 'not_found', reason: 'missing' }, code: 'E_DB_HTTP', transient: false, mentions: /404 not_found/ },
    { name: '409', failed: { status: 409, error: 'conflict', reason: 'Document update conflict.' }, code: 'E_CONFLICT', transient: false, mentions: /conflict/ },
    { name: '503', failed: { status: 503, error: 'service_unavailable' }, code: 'E_DB_HTTP', transient: true, mentions: /503/ },
    { name: '429', failed: { status: 429, error: 'too_many_requests' }, code: 'E_DB_HTTP', transient: true, mentions: /429/ },
    { name: 'missing index', failed: { status: 400, error: 'no_usable_index', reason: 'No index exists for this sort' }, code: 'E_DB_HTTP', transient: false, mentions: /after init/ },
    { name: 'aborted', failed: { aborted: true, networkCause: 'AbortError' }, code: 'E_ABORTED', transient: true, mentions: /aborted/ },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.code}`, () => {
      const err = requestError({ ...base, ...c.failed });
      expect(err).to.be.instanceOf(CouchRequestError);
      expect(err.code).to.equal(c.code);
      expect(err.transient).to.equal(c.transient);
      expect(err.message).to.match(c.mentions);
      if (c.code !== 'E_CONFLICT') expect(err.message).to.include('http://127.0.0.1:5984');
      expect(err.message).not.to.include('\n');
    });
  }

  it('never repeats a credential found in a reason', () => {
    const err = requestError({ ...base, status: 500, reason: 'proxy http://admin:hunter2@db:5984 failed' });
    expect(err.message).not.to.include('hunter2');
  });

  it('finds the socket error code however fetch and nano wrapped it', () => {
    const fetchError = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    expect(networkCause(fetchError)).to.equal('ECONNREFUSED');
    expect(networkCause(new Error('error happened in your connection. Reason: Error: connect ECONNRESET 127.0.0.1:9'))).to.equal('ECONNRESET');
    expect(networkCause(new Error('error happened in your connection. Reason: something odd'))).to.equal('something odd');
  });
});

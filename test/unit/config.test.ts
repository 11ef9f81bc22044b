import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { authenticatedUrl, loadConfig, parseConfig, scrubUrl } from '../../src/config';
import { ConfigError } from '../../src/errors';

const where = { file: '/etc/after/config.json', base: '/etc/after' };

describe('config', () => {
  it('fills every default and resolves paths against the file\'s folder', () => {
    const config = parseConfig({}, where);
    expect(config.couchdb).to.deep.equal({ url: 'http://127.0.0.1:5984', db: 'tasks', username: '', password: '' });
    expect(config.jobs).to.equal('/etc/after/jobs');
    expect(config.embedded).to.deep.equal({
      host: '127.0.0.1',
      port: 5984,
      dir: '/etc/after/data',
      allowed_hosts: [],
      cors_origins: [],
      max_document_size: 8_000_000,
      max_request_size: 64 * 1024 * 1024,
      compact_interval_ms: 300_000,
    });
    expect(config.worker).to.include({ concurrency: 10, lease_ms: 30_000 });
    expect(config.log).to.deep.equal({ level: 'info', dir: '/etc/after/logs' });
    expect(Object.isFrozen(config.worker)).to.equal(true);
  });

  it('points at the embedded server when no CouchDB URL is configured', () => {
    const config = parseConfig({ embedded: { port: 15984 } }, where);
    expect(config.couchdb.url).to.equal('http://127.0.0.1:15984');
    const explicit = parseConfig({ couchdb: { url: 'http://couch.internal:5984' }, embedded: { port: 15984 } }, where);
    expect(explicit.couchdb.url).to.equal('http://couch.internal:5984');
  });

  it('lets the environment override the database, jobs and home', () => {
    const config = parseConfig(
      { couchdb: { url: 'http://db.example:5984', db: 'tasks' } },
      { ...where, env: { AFTER_COUCHDB_URL: 'https://u:p@couch.internal:6984', AFTER_DB: 'jobs_prod', AFTER_JOBS: '/srv/jobs', AFTER_HOME: '/var/lib/after' } },
    );
    expect(config.couchdb.url).to.equal('https://u:p@couch.internal:6984');
    expect(config.couchdb.db).to.equal('jobs_prod');
    expect(config.jobs).to.equal('/srv/jobs');
    expect(config.home).to.equal('/var/lib/after');
  });

  const bad: Array<{ name: string; raw: unknown; field: string; env?: Record<string, string> }> = [
    { name: 'a config that is not an object', raw: [], field: '(top level)' },
    { name: 'an unknown top-level setting', raw: { workers: {} }, field: 'workers' },
    { name: 'a typo inside a section', raw: { worker: { concurency: 3 } }, field: 'worker.concurency' },
    { name: 'a section that is not an object', raw: { couchdb: 'http://x' }, field: 'couchdb' },
    { name: 'a URL that is not http', raw: { couchdb: { url: 'ftp://x' } }, field: 'couchdb.url' },
    { name: 'a URL that does not parse', raw: { couchdb: { url: 'not a url' } }, field: 'couchdb.url' },
    { name: 'a bad AFTER_COUCHDB_URL', raw: {}, field: 'AFTER_COUCHDB_URL', env: { AFTER_COUCHDB_URL: 'localhost:5984' } },
    { name: 'a database name CouchDB refuses', raw: { couchdb: { db: 'Tasks' } }, field: 'couchdb.db' },
    { name: 'a port out of range', raw: { embedded: { port: 70000 } }, field: 'embedded.port' },
    { name: 'an allowed host with a path', raw: { embedded: { allowed_hosts: ['after.lan/x'] } }, field: 'embedded.allowed_hosts[0]' },
    { name: 'allowed hosts that are not a list', raw: { embedded: { allowed_hosts: 'after.lan' } }, field: 'embedded.allowed_hosts' },
    { name: 'a CORS origin with a path', raw: { embedded: { cors_origins: ['https://app.example.com/page'] } }, field: 'embedded.cors_origins[0]' },
    { name: 'a CORS origin "*"', raw: { embedded: { cors_origins: ['*'] } }, field: 'embedded.cors_origins[0]' },
    { name: 'a compaction every 10 ms', raw: { embedded: { compact_interval_ms: 10 } }, field: 'embedded.compact_interval_ms' },
    { name: 'a document size limit of 0', raw: { embedded: { max_document_size: 0 } }, field: 'embedded.max_document_size' },
    { name: 'a concurrency of zero', raw: { worker: { concurrency: 0 } }, field: 'worker.concurrency' },
    { name: 'a fractional lease', raw: { worker: { lease_ms: 1500.5 } }, field: 'worker.lease_ms' },
    { name: 'a lease given as a string', raw: { worker: { lease_ms: '30s' } }, field: 'worker.lease_ms' },
    { name: 'an unknown log level', raw: { log: { level: 'loud' } }, field: 'log.level' },
    { name: 'a jobs folder that is not a string', raw: { jobs: 42 }, field: 'jobs' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}, naming the file and the field`, () => {
      let caught: unknown;
      try {
        parseConfig(c.raw, { ...where, env: c.env ?? {} });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      const message = (caught as ConfigError).message;
      expect(message).to.include(where.file).and.include(c.field);
      expect(message).to.not.include('\n');
    });
  }

  it('reports a malformed file as one line naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'config.json'), '{"worker": {"concurrency": 3,}}');
      expect(() => loadConfig({}, dir)).to.throw(ConfigError, path.join(dir, 'config.json'));
      expect(() => loadConfig({ AFTER_CONFIG: 'missing.json' }, dir)).to.throw(ConfigError, /missing\.json/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('merges credentials for nano and scrubs them for printing', () => {
    const url = authenticatedUrl({ url: 'http://127.0.0.1:5984', db: 'tasks', username: 'admin', password: 's3cr:t@' });
    expect(url).to.equal('http://admin:s3cr%3At%40@127.0.0.1:5984');
    expect(scrubUrl(url)).to.equal('http://127.0.0.1:5984');
    expect(scrubUrl('http://127.0.0.1:5984/')).to.equal('http://127.0.0.1:5984');
  });
});

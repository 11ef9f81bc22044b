import { expect } from 'chai';
import { hashAdminPassword, verifyAdminPassword } from '../../src/embedded/admin-credentials';
import {
  allowedHostValues,
  documentWriteProblem,
  hostAllowed,
  isLoopback,
  documentShapeProblem,
  oversizedDocument,
  routeRule,
  shapeMayBeWrong,
  type Access,
} from '../../src/embedded/guard-rules';

describe('embedded server guard: who may make which request', () => {
  const cases: Array<[method: string, url: string, access: Access, extra?: { body?: string; writes?: string; status?: number }]> = [
    // the server
    ['GET', '/', 'public'],
    ['PUT', '/', 'admin'],
    ['GET', '/_uuids?count=3', 'anyone'],
    ['GET', '/_session', 'anyone'],
    ['POST', '/_session', 'nobody', { status: 403 }],
    ['GET', '/_all_dbs', 'admin'],
    ['GET', '/_config', 'admin'],
    ['PUT', '/_config/admins/x', 'admin'],
    ['POST', '/_replicate', 'admin'],
    ['POST', '/_restart', 'admin'],
    ['GET', '/_utils/', 'admin'],
    ['GET', '/_users/org.couchdb.user:x', 'admin'],
    ['PUT', '/_users/org.couchdb.user:x', 'admin'],
    ['PUT', '/_replicator/x', 'admin'],
    ['GET', '/_node/node1@127.0.0.1/tasks', 'admin'],
    ['GET', '/%5Fusers/_all_docs', 'admin'],
    // databases
    ['GET', '/tasks', 'anyone'],
    ['GET', '/tasks/', 'anyone'],
    ['PUT', '/tasks_new', 'admin'],
    ['PUT', '/tasks_instances', 'admin'],
    ['DELETE', '/tasks', 'admin'],
    ['POST', '/tasks', 'anyone', { body: 'json', writes: 'single' }],
    ['POST', '/tasks/_compact', 'admin'],
    ['POST', '/tasks/_view_cleanup', 'admin'],
    ['POST', '/tasks/_purge', 'admin'],
    ['PUT', '/tasks/_revs_limit', 'admin'],
    ['GET', '/tasks/_security', 'anyone'],
    ['GET', '/tasks/_design_docs', 'anyone'],
    ['PUT', '/tasks/_security', 'admin'],
    ['POST', '/tasks/_temp_view', 'admin'],
    ['POST', '/tasks/_index', 'admin'],
    ['DELETE', '/tasks/_index/after/json/x', 'admin'],
    ['GET', '/tasks/_index', 'anyone'],
    ['GET', '/tasks/_all_docs?include_docs=true', 'anyone'],
    ['POST', '/tasks/_all_docs', 'anyone', { body: 'json' }],
    ['GET', '/tasks/_changes?feed=longpoll&since=now', 'anyone'],
    ['GET', '/tasks/_changes?filter=after/by_worker&worker=w', 'anyone'],
    ['GET', '/tasks/_changes?filter=_selector', 'nobody', { status: 400 }],
    ['POST', '/tasks/_changes?filter=_selector', 'nobody', { status: 400 }],
    ['GET', '/tasks/_changes?filter=%22_selector%22', 'nobody', { status: 400 }],
    ['POST', '/tasks/_find', 'anyone', { body: 'json' }],
    ['POST', '/tasks/_explain', 'anyone', { body: 'json' }],
    ['POST', '/tasks/_bulk_docs', 'anyone', { body: 'bulk', writes: 'bulk' }],
    ['POST', '/tasks/_bulk_get', 'anyone', { body: 'json' }],
    ['POST', '/tasks/_revs_diff', 'anyone', { body: 'json' }],
    // documents
    ['GET', '/tasks/t1', 'anyone'],
    ['PUT', '/tasks/t1', 'anyone', { body: 'json', writes: 'single' }],
    ['DELETE', '/tasks/t1?rev=1-a', 'anyone'],
    ['COPY', '/tasks/t1', 'anyone', { writes: 'copy' }],
    ['POST', '/tasks/t1', 'admin'],
    ['PUT', '/tasks/t1/file.txt', 'anyone', { body: 'raw' }],
    ['GET', '/tasks/t1/file.txt', 'anyone'],
    ['PUT', '/tasks/_local/checkpoint', 'anyone', { body: 'json', writes: 'single' }],
    ['PUT', '/tasks/_local%2Fcheckpoint', 'anyone', { body: 'json', writes: 'single' }],
    ['DELETE', '/tasks/_local/checkpoint', 'anyone'],
    // pouchdb-security keeps the members in _local/_security: whoever writes it opens the database
    ['PUT', '/tasks/_local/_security', 'admin'],
    ['PUT', '/tasks/_local%2F_security', 'admin'],
    ['GET', '/tasks/_local/_security', 'admin'],
    ['DELETE', '/tasks/_local/_security?rev=0-1', 'admin'],
    // design documents: read and query, never write
    ['GET', '/tasks/_design/after', 'anyone'],
    ['GET', '/tasks/_design/after/_view/by_worker_status?group=true', 'anyone'],
    ['POST', '/tasks/_design/after/_view/by_worker_status', 'anyone', { body: 'json' }],
    ['GET', '/tasks/_design/after/_info', 'anyone'],
    ['PUT', '/tasks/_design/evil', 'admin'],
    ['PUT', '/tasks/_design%2Fevil', 'admin'],
    ['PUT', '/tasks/%5Fdesign/evil', 'admin'],
    ['PUT', '/tasks/%5Fdesign%2Fevil', 'admin'],
    ['DELETE', '/tasks/_design/after?rev=1-a', 'admin'],
    ['COPY', '/tasks/_design/after', 'admin'],
    ['PUT', '/tasks/_design/after/file.js', 'admin'],
    ['GET', '/tasks/_design/after/_show/x/t1', 'admin'],
    ['GET', '/tasks/_design/after/_list/x/y', 'admin'],
    ['POST', '/tasks/_design/after/_update/x/t1', 'admin'],
    ['GET', '/tasks/_design/after/_rewrite/anything', 'admin'],
    // malformed
    ['GET', '/tasks/%E0%A4%A', 'nobody', { status: 400 }],
    ['GET', '/tasks/../_config', 'nobody', { status: 400 }],
    ['PUT', '/tasks//x', 'admin'],
    ['PATCH', '/tasks/t1', 'admin'],
  ];
  for (const [method, url, access, extra] of cases) {
    it(`${method} ${url}: ${access}${extra?.writes ? ` (checks ${extra.writes} ids)` : ''}`, () => {
      const rule = routeRule(method, url);
      expect(rule.access).to.equal(access);
      if (extra?.body) expect(rule.body).to.equal(extra.body);
      if (extra?.writes) expect(rule.writes).to.equal(extra.writes);
      if (extra?.status) expect(rule.status).to.equal(extra.status);
      if (access === 'admin' || access === 'nobody') expect(rule.reason).to.be.a('string').and.not.equal('');
    });
  }

  it('names the database of every request inside one, so its members apply', () => {
    expect(routeRule('POST', '/tasks/_find').database).to.equal('tasks');
    expect(routeRule('GET', '/tasks%5Fcontrol/x').database).to.equal('tasks_control');
    expect(routeRule('GET', '/tasks/_changes?feed=continuous').database).to.equal('tasks');
    expect(routeRule('GET', '/').database).to.equal(undefined);
    expect(routeRule('GET', '/_uuids').database).to.equal(undefined);
  });

  it('marks where a request carries a Mango selector', () => {
    expect(routeRule('POST', '/tasks/_find').selector).to.equal('body');
    expect(routeRule('POST', '/tasks/_explain').selector).to.equal('body');
    expect(routeRule('GET', '/tasks/_changes?selector=%7B%7D').selector).to.equal('query');
    expect(routeRule('POST', '/tasks/_changes?selector=%7B%7D').selector).to.equal('query');
    expect(routeRule('GET', '/tasks/_changes?feed=longpoll').selector).to.equal(undefined);
  });
});

describe('embedded server guard: the documents a non-admin writes', () => {
  const cases: Array<{ name: string; writes: 'single' | 'bulk' | 'copy'; request: Parameters<typeof documentWriteProblem>[1]; refused: boolean }> = [
    { name: 'an ordinary task', writes: 'single', request: { body: { worker: 'w' } }, refused: false },
    { name: 'a _local document', writes: 'single', request: { body: { _id: '_local/x' } }, refused: false },
    { name: 'the document holding the members', writes: 'single', request: { body: { _id: '_local/_security' } }, refused: true },
    { name: 'the document holding the members, in a bulk', writes: 'bulk', request: { body: { docs: [{ _id: '_local/_security', security: {} }] } }, refused: true },
    { name: 'a copy onto the document holding the members', writes: 'copy', request: { destination: '_local/_security' }, refused: true },
    { name: 'a body _id naming a design document', writes: 'single', request: { body: { _id: '_design/evil' } }, refused: true },
    { name: 'a reserved _id', writes: 'single', request: { body: { _id: '_security' } }, refused: true },
    { name: '?id= naming a design document', writes: 'single', request: { body: {}, queryId: '_design/evil' }, refused: true },
    { name: 'a multipart document', writes: 'single', request: { body: {}, contentType: 'multipart/related; boundary=x' }, refused: true },
    { name: 'a bulk of tasks', writes: 'bulk', request: { body: { docs: [{ _id: 'a' }, { worker: 'w' }, null] } }, refused: false },
    { name: 'a bulk with a design document', writes: 'bulk', request: { body: { docs: [{ _id: 'a' }, { _id: '_design/evil' }] } }, refused: true },
    { name: 'a bulk with new_edits false and a design document', writes: 'bulk', request: { body: { new_edits: false, docs: [{ _id: '_design/x', _rev: '1-a' }] } }, refused: true },
    { name: 'a copy to a task', writes: 'copy', request: { destination: 't2' }, refused: false },
    { name: 'a copy to a design document', writes: 'copy', request: { destination: '_design/evil?rev=1-a' }, refused: true },
    { name: 'a copy to an encoded design document', writes: 'copy', request: { destination: '%5Fdesign/evil' }, refused: true },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.refused ? 'refused' : 'allowed'}`, () => {
      expect(documentWriteProblem(c.writes, c.request) !== null).to.equal(c.refused);
    });
  }

  it('finds the document over the size limit in a large bulk, by id or position', () => {
    expect(oversizedDocument({ docs: [{ _id: 'small' }, { _id: 'big', data: 'x'.repeat(200) }] }, 100)).to.equal('big');
    expect(oversizedDocument({ docs: [{ data: 'x'.repeat(200) }] }, 100)).to.equal('docs[0]');
    expect(oversizedDocument({ docs: [{ _id: 'small' }] }, 100)).to.equal(null);
  });

  it('finds a document nested past the depth limit, alone or in a bulk, naming its field', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = { a: value };
      return value;
    };
    expect(documentShapeProblem({ _id: 'deep', data: nested(101) }, 100)).to.equal('deep: data is nested more than 100 levels deep');
    expect(documentShapeProblem({ data: nested(101) }, 100)).to.equal('the document: data is nested more than 100 levels deep');
    expect(documentShapeProblem({ docs: [{ _id: 'ok', data: nested(100) }, { job: nested(150) }] }, 100)).to.equal('docs[1]: job is nested more than 100 levels deep');
    expect(documentShapeProblem({ _id: 'ok', data: nested(100) }, 100)).to.equal(null);
  });

  it('tells from the bytes alone when a write may be too deep or hold "__proto__", so the walk runs only then', () => {
    const nestedText = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const cases: Array<[text: string, wrapperLevels: number, may: boolean]> = [
      [`{"data": ${nestedText(100)}}`, 1, false],
      [`{"data": ${nestedText(101)}}`, 1, true],
      [`{"docs": [{"data": ${nestedText(100)}}]}`, 3, false],
      [`{"docs": [{"data": ${nestedText(101)}}]}`, 3, true],
      // Brackets in strings (an escaped quote included) are no nesting.
      [`{"s": "a \\" ${'{['.repeat(200)}"}`, 1, false],
      ['{"repeat": {"__proto__": 1}}', 1, true],
      ['{"repeat": {"\\u005f_proto__": 1}}', 1, true],
    ];
    for (const [text, wrapperLevels, may] of cases) {
      JSON.parse(text);
      expect(shapeMayBeWrong(Buffer.from(text), 100, wrapperLevels), text.slice(0, 60)).to.equal(may);
    }
  });

  it('finds a "__proto__" key at any depth below the top (PouchDB would drop it silently), naming its path', () => {
    const proto = (json: string): unknown => JSON.parse(json);
    expect(documentShapeProblem(proto('{"_id": "t", "repeat": {"days": 1, "__proto__": {}}}'), 100)).to.match(/^t: repeat\.__proto__: a "__proto__" key/);
    expect(documentShapeProblem(proto('{"docs": [{"_id": "a"}, {"data": [{"x": {"__proto__": 1}}]}]}'), 100)).to.match(/^docs\[1\]: data\.0\.x\.__proto__: /);
    expect(documentShapeProblem(proto('{"repeat": {"days": 1, "constructor": 2, "prototype": 3}}'), 100)).to.equal(null);
    // At the top it starts with "_": the server refuses it itself, as CouchDB does.
    expect(documentShapeProblem(proto('{"__proto__": {"x": 1}}'), 100)).to.equal(null);
  });
});

describe('embedded server guard: Host names and peers', () => {
  const hosts = allowedHostValues(5984, '127.0.0.1', ['after.internal', 'box.lan:8080', '[fd00::1]']);
  const cases: Array<[host: string | undefined, allowed: boolean]> = [
    ['127.0.0.1:5984', true],
    ['localhost:5984', true],
    ['LOCALHOST:5984', true],
    ['[::1]:5984', true],
    ['after.internal:5984', true],
    ['box.lan:8080', true],
    ['[fd00::1]:5984', true],
    ['evil.test:5984', false],
    ['127.0.0.1', false],
    ['127.0.0.1:5985', false],
    ['localhost.:5984', false],
    ['box.lan:5984', false],
    ['', false],
    [undefined, false],
  ];
  for (const [host, allowed] of cases) {
    it(`Host ${JSON.stringify(host)}: ${allowed ? 'allowed' : 'refused'}`, () => {
      expect(hostAllowed(host, hosts)).to.equal(allowed);
    });
  }

  it('allows the bound address, and bare names on port 80', () => {
    expect(hostAllowed('192.168.1.5:5984', allowedHostValues(5984, '192.168.1.5', []))).to.equal(true);
    expect(hostAllowed('localhost', allowedHostValues(80, '127.0.0.1', []))).to.equal(true);
  });

  it('knows loopback peers', () => {
    for (const peer of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect(isLoopback(peer), peer).to.equal(true);
    for (const peer of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '', undefined]) expect(isLoopback(peer), String(peer)).to.equal(false);
  });
});

describe('embedded server admin: password hashes', () => {
  it('verifies the password it hashed, in the format express-pouchdb reads, and nothing else', () => {
    const hash = hashAdminPassword('s3cret');
    expect(hash).to.match(/^-pbkdf2-[\da-f]{40},[\da-f]{32},10$/);
    expect(verifyAdminPassword(hash, 's3cret')).to.equal(true);
    expect(verifyAdminPassword(hash, 's3cret!')).to.equal(false);
    expect(verifyAdminPassword('plain-text', 's3cret')).to.equal(false);
  });

  it('computes the derived key pouchdb-auth (what express-pouchdb logs admins in with) computes', async () => {
    const salt = '00112233445566778899aabbccddeeff';
    const auth = require('pouchdb-auth/lib/utils') as { hashPassword(password: string, salt: string, iterations: number): Promise<string> };
    const theirs = await auth.hashPassword('s3cret', salt, 10);
    expect(hashAdminPassword('s3cret', salt)).to.equal(`-pbkdf2-${theirs},${salt},10`);
  });
});

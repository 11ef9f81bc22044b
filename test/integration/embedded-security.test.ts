/**
 * The embedded server is locked by default (issue 11, rows 1 and 9): tried as a web page, a
 * local process and a task writer would, on a server started the way a user starts it
 * (`after db start -b`, then `after init`, in a fresh AFTER_HOME).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readAdminCredentials } from '../../src/embedded/admin-credentials';
import { embeddedFiles } from '../../src/embedded/server-files';
import { startEmbedded, stopEmbedded } from '../../src/embedded/server';
import { freePort, runCli, startTestDb, startWorker, waitFor, type CliResult } from '../helpers/index';
import { sendRaw, splitUrl, type RawAnswer } from '../helpers/raw-http';

/**
 * One HTTP request with these headers (fetch would not let a test set Host) and the credentials
 * in the URL (sendRaw adds `accept: application/json` unless a test gives its own).
 */
function send(url: string, method: string, options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<RawAnswer> {
  const { origin, auth } = splitUrl(url);
  const target = new URL(url);
  return sendRaw(origin, method, `${target.pathname}${target.search}`, { ...options, ...(auth && { auth }) });
}

/** A task a valid `validate_doc_update` accepts, with `bytes` of random data. */
function task(bytes = 0): Record<string, unknown> {
  return { worker: 'quick', date: '2013-01-12', job: 'succeeds', status: 'waiting', data: randomBytes(Math.ceil(bytes * 0.75)).toString('base64').slice(0, bytes) };
}

describe('embedded server: locked by default', function () {
  this.timeout(120_000);
  let root: string;
  let env: Record<string, string>;
  let url: string;
  let adminUrl: string;
  const outputs: CliResult[] = [];

  const cli = async (args: string[]): Promise<CliResult> => {
    const result = await runCli(args, { env, timeoutMs: 60_000 });
    outputs.push(result);
    return result;
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-locked-'));
    const port = await freePort();
    const configFile = path.join(root, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ embedded: { port, dir: path.join(root, 'data') }, log: { dir: path.join(root, 'logs') } }));
    env = { AFTER_HOME: path.join(root, 'home'), AFTER_CONFIG: configFile };
    const started = await cli(['db', 'start', '-b']);
    expect(started.code, started.stderr).to.equal(0);
    const init = await cli(['init']);
    expect(init.code, init.stderr).to.equal(0);
    url = `http://127.0.0.1:${port}`;
    const credentials = await runCli(['db', 'credentials'], { env });
    expect(credentials.code, credentials.stderr).to.equal(0);
    adminUrl = credentials.stdout.trim();
  });

  after(async () => {
    await runCli(['db', 'stop'], { env, timeoutMs: 60_000 });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('answers a cross-origin preflight without Access-Control-Allow-Origin', async () => {
    const preflight = await send(`${url}/tasks/_design/x`, 'OPTIONS', {
      headers: { origin: 'http://evil.test', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.headers).to.not.have.property('access-control-allow-origin');
    expect(preflight.headers).to.not.have.property('access-control-allow-credentials');
    expect(preflight.status).to.equal(403);
    // The request a page would send without a preflight (a form post) is refused too.
    const formPost = await send(`${url}/tasks`, 'POST', { headers: { origin: 'http://evil.test', 'content-type': 'text/plain' }, body: JSON.stringify(task()) });
    expect(formPost.status).to.equal(403);
    expect(formPost.body).to.have.property('error', 'forbidden');
  });

  it('refuses an anonymous design document, however it is sent, and stores nothing', async () => {
    const marker = path.join(root, 'design-doc-ran');
    const evil = {
      validate_doc_update: `function () { this.constructor.constructor('return process')().mainModule.require('fs').writeFileSync(${JSON.stringify(marker)}, 'pwned'); }`,
    };
    const attempts: RawAnswer[] = [
      await send(`${url}/tasks/_design/evil`, 'PUT', { body: evil }),
      await send(`${url}/tasks/_design%2Fevil`, 'PUT', { body: evil }),
      await send(`${url}/tasks/innocent`, 'PUT', { body: { ...evil, _id: '_design/evil' } }),
      await send(`${url}/tasks`, 'POST', { body: { ...evil, _id: '_design/evil' } }),
      await send(`${url}/tasks/_bulk_docs`, 'POST', { body: { docs: [{ _id: 'bulk-ordinary', ...task() }, { _id: '_design/evil', ...evil }] } }),
      await send(`${url}/tasks/_index`, 'POST', { body: { index: { fields: ['evil'] }, ddoc: 'evil' } }),
    ];
    // A COPY of an ordinary document onto a design document id.
    const source = await send(`${url}/tasks`, 'POST', { body: task() });
    attempts.push(await send(`${url}/tasks/${source.body.id}`, 'COPY', { headers: { destination: '_design/evil' } }));
    for (const answer of attempts) {
      expect(answer.status, JSON.stringify(answer.body)).to.equal(401);
      expect(answer.body).to.have.property('error', 'unauthorized');
      // Refused by the guard, before express-pouchdb (and any stored JavaScript) sees it.
      expect(answer.body.reason).to.match(/server admin/);
    }
    // Nothing of the refused bulk got in either; a later write runs no stored JavaScript of theirs.
    for (const id of ['_design/evil', 'bulk-ordinary', 'innocent']) {
      expect((await send(`${adminUrl}/tasks/${id}`, 'GET')).status, id).to.equal(404);
    }
    expect((await send(`${adminUrl}/tasks/_index`, 'GET')).body.indexes.map((i: { ddoc: string }) => i.ddoc)).to.not.include('_design/evil');
    expect((await send(`${url}/tasks`, 'POST', { body: task() })).status).to.equal(201);
    expect((await send(`${url}/tasks/${source.body.id}`, 'COPY', { headers: { destination: 'copied-task' } })).status).to.equal(201);
    expect(fs.existsSync(marker)).to.equal(false);
  });

  it('refuses an anonymous PUT of a new database, and still answers afterwards', async () => {
    for (const name of ['tasks_new', 'tasks_instances_x', '_users', '%5Fusers']) {
      const created = await send(`${url}/${name}`, 'PUT');
      expect(created.status, name).to.equal(401);
    }
    expect((await send(`${url}/`, 'GET')).status).to.equal(200);
    const dbs = (await send(`${adminUrl}/_all_dbs`, 'GET')).body as string[];
    expect(dbs).to.not.include('tasks_new');
    // The admin (through a CouchDB client's usual Basic URL) may.
    expect((await send(`${adminUrl}/tasks_admin_made`, 'PUT')).status).to.equal(201);
  });

  it('refuses a Host that is not a name of this server (DNS rebinding)', async () => {
    const port = new URL(url).port;
    const rebound = await send(`${url}/tasks/_all_docs`, 'GET', { headers: { host: `evil.test:${port}` } });
    expect(rebound.status).to.equal(403);
    expect(rebound.body).to.not.have.property('rows');
    const write = await send(`${url}/tasks`, 'POST', { headers: { host: `evil.test:${port}` }, body: task() });
    expect(write.status).to.equal(403);
    expect((await send(`${url}/tasks/_all_docs`, 'GET', { headers: { host: `localhost:${port}` } })).status).to.equal(200);
  });

  it('takes the quick start task from loopback with no password', async () => {
    const posted = await send(`${url}/tasks`, 'POST', {
      body: { worker: 'manobi', date: '2013-01-12', job: { name: 'start_replication', arguments: [2, 3, 'test'] }, status: 'waiting' },
    });
    expect(posted.status).to.equal(201);
    expect(posted.body).to.include({ ok: true });
    const read = await send(`${url}/tasks/${posted.body.id}`, 'GET');
    expect(read.body).to.include({ worker: 'manobi', status: 'waiting' });
  });

  it('refuses a document over 1 MB (worker.max_task_size) with 413 naming the limit, and takes one just under it', async () => {
    const tooLarge = await send(`${url}/tasks`, 'POST', { body: task(1_000_001) });
    expect(tooLarge.status).to.equal(413);
    expect(tooLarge.body).to.have.property('error', 'document_too_large');
    expect(tooLarge.body.reason).to.match(/1000000 bytes.*worker\.max_task_size/);
    const bulkTooLarge = await send(`${url}/tasks/_bulk_docs`, 'POST', { body: { docs: [{ _id: 'small-one', ...task() }, { _id: 'huge-one', ...task(1_100_000) }] } });
    expect(bulkTooLarge.status).to.equal(413);
    expect(bulkTooLarge.body.reason).to.match(/^huge-one: /);
    expect((await send(`${url}/tasks/small-one`, 'GET')).status).to.equal(404);

    const fits = await send(`${url}/tasks`, 'POST', { body: task(990_000) });
    expect(fits.status, JSON.stringify(fits.body).slice(0, 200)).to.equal(201);
    // A bulk larger than one document's limit, each document within it, passes.
    const bulk = await send(`${url}/tasks/_bulk_docs`, 'POST', { body: { docs: [task(900_000), task(900_000)] } });
    expect(bulk.status).to.equal(201);
    expect(bulk.body.filter((row: { ok?: boolean }) => row.ok)).to.have.length(2);
  });

  it('keeps the admin in a 0600 file in a 0700 AFTER_HOME; its password shows only in `after db credentials`', async () => {
    const home = env.AFTER_HOME!;
    const admin = readAdminCredentials(home)!;
    expect(admin.password.length).to.be.at.least(43); // 32 random bytes, base64url
    expect(fs.statSync(path.join(home, 'db-admin.json')).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(home).mode & 0o777).to.equal(0o700);
    // Its log too (and every log file After writes: log.ts createPrivateFile).
    expect(fs.statSync(embeddedFiles(home).log).mode & 0o777).to.equal(0o600);
    expect(new URL(adminUrl).password).to.equal(admin.password);

    for (const args of [
      ['task', 'add', '--worker', 'quick', '--date', '2030-01-01', '--job', 'succeeds'],
      ['task', 'list'],
      ['status'],
      ['purge', '--older-than', '1d'],
      ['db', 'status'],
      ['--verbose', 'status'],
      ['db', 'start', '-b'],
    ]) {
      await cli(args);
    }
    for (const result of outputs) {
      expect(result.stdout + result.stderr).to.not.contain(admin.password);
    }
    const serverConfig = fs.readFileSync(path.join(root, 'data', 'pouchdb-server.json'), 'utf8');
    expect(serverConfig).to.match(/"after-admin": "-pbkdf2-/);
    for (const text of [serverConfig, fs.readFileSync(embeddedFiles(home).log, 'utf8'), fs.readFileSync(embeddedFiles(home).state, 'utf8')]) {
      expect(text).to.not.contain(admin.password);
    }
  });

  it('lets `after purge` compact as the admin, and `after status` work without it', async () => {
    const purge = await cli(['purge', '--older-than', '1d']);
    expect(purge.code, purge.stderr).to.equal(0);
    const status = await cli(['status']);
    expect(status.code, status.stderr).to.equal(0);
  });

  it('uses the admin only for the server started from this AFTER_HOME; configured credentials win', async () => {
    const password = readAdminCredentials(env.AFTER_HOME!)!.password;
    // The same server named by an explicit URL without credentials: the admin is added.
    const sameServer = await runCli(['init'], { env: { ...env, AFTER_COUCHDB_URL: url, AFTER_DB: 'tasks_explicit' } });
    expect(sameServer.code, sameServer.stderr).to.equal(0);
    // Credentials in the URL are used as they are, even wrong ones.
    const wrong = await runCli(['init'], { env: { ...env, AFTER_COUCHDB_URL: url.replace('//', '//someone:guess@'), AFTER_DB: 'tasks_wrong' } });
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr.trim().split('\n')).to.have.length(1);
    // Another AFTER_HOME (no server started from it): no admin to add, the server refuses.
    const otherHome = path.join(root, 'other-home');
    const elsewhere = await runCli(['init'], { env: { ...env, AFTER_HOME: otherHome, AFTER_COUCHDB_URL: url, AFTER_DB: 'tasks_elsewhere' } });
    expect(elsewhere.code).to.equal(1);
    expect(elsewhere.stderr).to.match(/401 unauthorized.*only the server admin may create databases/);
    expect(elsewhere.stderr).to.match(/after db credentials/);
    for (const result of [sameServer, wrong, elsewhere]) expect(result.stdout + result.stderr).to.not.contain(password);
    const dbs = (await send(`${adminUrl}/_all_dbs`, 'GET')).body as string[];
    expect(dbs).to.include('tasks_explicit').and.not.include('tasks_wrong').and.not.include('tasks_elsewhere');
  });

  it('makes a new admin when its file is lost, at the next start, with the data kept', async () => {
    const home = env.AFTER_HOME!;
    const lost = readAdminCredentials(home)!;
    const kept = await send(`${url}/tasks`, 'POST', { body: task() });
    expect((await cli(['db', 'stop'])).code).to.equal(0);
    fs.rmSync(path.join(home, 'db-admin.json'));
    expect((await cli(['db', 'start', '-b'])).code).to.equal(0);

    const fresh = readAdminCredentials(home)!;
    expect(fresh.password).to.not.equal(lost.password);
    expect((await send(`${url.replace('//', `//${lost.name}:${lost.password}@`)}/_all_dbs`, 'GET')).status, 'the lost password').to.equal(401);
    adminUrl = (await runCli(['db', 'credentials'], { env })).stdout.trim();
    expect((await send(`${adminUrl}/_all_dbs`, 'GET')).status).to.equal(200);
    const init = await cli(['init']);
    expect(init.code, init.stderr).to.equal(0);
    expect(init.stdout).to.match(/unchanged/);
    expect((await send(`${url}/tasks/${kept.body.id}`, 'GET')).status).to.equal(200);
  });
});

describe('embedded server: settings, peers and compaction', function () {
  this.timeout(180_000);
  let root: string;
  let home: string;
  let url: string;
  let adminUrl: string;

  afterEach(async () => {
    await stopEmbedded(home);
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(options: Partial<Parameters<typeof startEmbedded>[0]> = {}): Promise<void> {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-guard-'));
    home = path.join(root, 'home');
    const port = await freePort();
    const server = await startEmbedded({ host: '127.0.0.1', port, dir: path.join(root, 'data'), home, background: true, ...options });
    url = server.url;
    const admin = readAdminCredentials(home)!;
    adminUrl = url.replace('//', `//${admin.name}:${admin.password}@`);
    expect((await send(`${adminUrl}/tasks`, 'PUT')).status).to.equal(201);
  }

  it('answers CORS for the origins in embedded.cors_origins only, and the Host names in embedded.allowed_hosts', async () => {
    await start({ corsOrigins: ['http://app.test:8080'], allowedHosts: ['after.test'] });
    const port = new URL(url).port;
    const preflight = await send(`${url}/tasks`, 'OPTIONS', {
      headers: { origin: 'http://app.test:8080', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-evil' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers['access-control-allow-origin']).to.equal('http://app.test:8080');
    expect(preflight.headers['access-control-allow-headers']).to.equal('content-type');
    const posted = await send(`${url}/tasks`, 'POST', { headers: { origin: 'http://app.test:8080' }, body: task() });
    expect(posted.status).to.equal(201);
    expect(posted.headers['access-control-allow-origin']).to.equal('http://app.test:8080');
    expect((await send(`${url}/tasks`, 'POST', { headers: { origin: 'http://app.test:9090' }, body: task() })).status).to.equal(403);
    expect((await send(`${url}/tasks`, 'GET', { headers: { host: `after.test:${port}` } })).status).to.equal(200);
    expect((await send(`${url}/tasks`, 'GET', { headers: { host: `other.test:${port}` } })).status).to.equal(403);
  });

  it('takes requests without credentials from loopback only', async function () {
    const lan = Object.values(os.networkInterfaces())
      .flat()
      .find((nic) => nic && nic.family === 'IPv4' && !nic.internal);
    if (!lan) this.skip();
    await start({ host: lan!.address });
    expect(url).to.equal(`http://${lan!.address}:${new URL(url).port}`);
    const anonymous = await send(`${url}/tasks`, 'POST', { body: task() });
    expect(anonymous.status).to.equal(401);
    expect((await send(`${url}/`, 'GET')).status, 'the welcome is public').to.equal(200);
    expect((await send(`${url}/tasks/_all_docs`, 'GET')).status).to.equal(401);
    expect((await send(`${adminUrl}/tasks`, 'POST', { body: task() })).status).to.equal(201);
  });

  it('compacts every database: a task rewritten 150 times does not keep its old revisions on disk', async () => {
    await start({ compactIntervalMs: 1000 });
    const diskSize = async (): Promise<number> => (await send(`${url}/tasks`, 'GET')).body.disk_size as number;
    // Random data does not compress: 150 revisions of 50 KB are 7 MB of bodies on disk.
    let doc: Record<string, unknown> = { _id: 'busy', ...task() };
    let peak = 0;
    for (let i = 0; i < 150; i++) {
      const put = await send(`${url}/tasks/busy`, 'PUT', { body: { ...doc, data: randomBytes(37_500).toString('base64') } });
      expect(put.status).to.equal(201);
      doc = { ...doc, _rev: put.body.rev };
      if (i % 25 === 0) peak = Math.max(peak, await diskSize());
    }
    peak = Math.max(peak, await diskSize());
    const compacted = await waitFor(async () => {
      const size = await diskSize();
      return size < 1024 * 1024 ? size : false;
    }, { timeoutMs: 60_000, intervalMs: 500, what: `the tasks database to be compacted below 1 MiB (it peaked at ${peak} bytes)` });
    expect(compacted).to.be.below(peak);
    expect(fs.readFileSync(embeddedFiles(home).log, 'utf8')).to.match(/compacted tasks: \d+ changed documents/);
    // The task is intact.
    expect((await send(`${url}/tasks/busy`, 'GET')).body._rev).to.equal(doc._rev);
  });
});

describe('worker instances without the right to create their database', function () {
  this.timeout(90_000);

  it('`after init` creates <db>_control; a worker without it says once to run `after init`, and runs tasks all the same', async function () {
    if (process.env.COUCHDB_URL) this.skip(); // the same on CouchDB; one server is enough
    const db = await startTestDb();
    const control = `../${db.dbName}_control`;
    expect((await db.request('GET', control)).status, 'after init created it').to.equal(200);
    expect((await db.adminRequest('DELETE', control)).status).to.equal(200);
    const { child: worker } = await startWorker(db, 'lonely');
    await worker.waitForOutput(/control database \S+ does not exist \(run 'after init'\)/, 30_000);
    // The worker runs tasks all the same.
    const posted = await db.request<{ id: string }>('POST', '', { worker: 'lonely', date: new Date().toISOString(), job: 'succeeds' });
    await waitFor(async () => (await db.request<{ status: string }>('GET', posted.body.id)).body.status === 'done', { timeoutMs: 30_000, what: 'the task to be done' });
    worker.kill('SIGTERM');
    await worker.exited;
    expect(`${worker.stdout}${worker.stderr}`.match(/does not exist \(run 'after init'\)/g), 'said once').to.have.length(1);
  });
});

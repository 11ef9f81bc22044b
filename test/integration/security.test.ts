/**
 * Security as a user meets it: the database refuses invalid tasks itself, disabled built-ins
 * and job names outside the jobs folder are unknown jobs, credentials from a config file work
 * and never show, and the embedded server listens on loopback only.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FIXTURE_JOBS, freePort, runCli, startTestDb, startWorker, waitFor, waitForStatus } from '../helpers/index';

const PASSWORD = 'Pa55-w0rd-never-shown';

describe('security', function () {
  this.timeout(90_000);

  it('after init --validate, the database refuses an invalid task with 403 naming the field; valid tasks, extra fields, deletions and design documents pass', async () => {
    const db = await startTestDb({ init: false });
    await db.init({ validate: true });
    const refused = await db.request('PUT', 'bad-date', { worker: 'w', date: '2013-02-30', job: 'succeeds' });
    expect(refused.status).to.equal(403);
    expect(refused.body).to.have.property('error', 'forbidden');
    expect(refused.body.reason).to.match(/^date: "2013-02-30"/);
    const zeroRepeat = await db.request('POST', '', { worker: 'w', date: '2013-01-12', job: 'succeeds', repeat: { days: 0 } });
    expect([zeroRepeat.status, zeroRepeat.body.reason]).to.deep.equal([403, 'repeat: has zero length (a repeat of zero length would run forever)']);
    const bulk = await db.request<Array<{ id: string; error?: string; reason?: string }>>('POST', '_bulk_docs', {
      docs: [{ _id: 'ok-1', worker: 'w', date: '2013-01-12', job: 'succeeds', anything: { else: [1] } }, { _id: 'no-worker', date: '2013-01-12', job: 'x' }],
    });
    const byId = new Map(bulk.body.map((row) => [row.id, row]));
    expect(byId.get('ok-1')).to.not.have.property('error');
    expect(byId.get('no-worker')).to.include({ error: 'forbidden', reason: 'worker: is missing' });

    const stored = await db.request('GET', 'ok-1');
    expect((await db.request('DELETE', `ok-1?rev=${stored.body._rev}`)).status).to.equal(200);
    expect((await db.adminRequest('PUT', '_design/mine', { views: { all: { map: 'function (doc) { emit(doc._id, null); }' } } })).status).to.equal(201);
    // A second init finds everything as it left it.
    expect((await db.init()).changed).to.equal(false);
  });

  it('exec is off unless turned on: an unknown job, and `after jobs` does not list it', async () => {
    const db = await startTestDb();
    const jobs = await runCli(['jobs', '--jobs', FIXTURE_JOBS], { env: db.env });
    expect(jobs.code).to.equal(0);
    expect(jobs.stdout).to.match(/\bwebhook\b/);
    expect(jobs.stdout).to.not.match(/\bexec\b/);
    await startWorker(db, 'no-exec');
    const marker = path.join(db.root, 'exec-ran');
    const posted = await db.request('POST', '', {
      worker: 'no-exec',
      date: new Date().toISOString(),
      job: { name: 'exec', arguments: ['/usr/bin/touch', marker] },
    });
    const failed = await waitForStatus(db, posted.body.id, 'error');
    expect(failed.error?.message).to.match(/^job\.name: unknown job "exec"/);
    expect(fs.existsSync(marker)).to.equal(false);
  });

  it('a job file that links out of the jobs folder stops the worker at start; names reaching outside are unknown jobs', async () => {
    const db = await startTestDb();
    const jobsDir = path.join(db.root, 'jobs');
    const outside = path.join(db.root, 'outside');
    fs.mkdirSync(jobsDir);
    fs.mkdirSync(outside);
    const marker = path.join(db.root, 'outside-ran');
    fs.copyFileSync(path.join(FIXTURE_JOBS, 'succeeds.js'), path.join(jobsDir, 'succeeds.js'));
    fs.writeFileSync(path.join(outside, 'escape.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nmodule.exports = async () => 'escaped';\n`);
    fs.symlinkSync(path.join(outside, 'escape.js'), path.join(jobsDir, 'escape.js'));

    const refused = await runCli(['start', 'contained', '--jobs', jobsDir], { env: db.env });
    expect(refused.code).to.equal(1);
    expect(refused.stderr.trim().split('\n')).to.have.length(1);
    expect(refused.stderr).to.contain('escape.js');

    fs.unlinkSync(path.join(jobsDir, 'escape.js'));
    fs.symlinkSync(outside, path.join(jobsDir, 'out'));
    await startWorker(db, 'contained', { jobs: jobsDir });
    const ids: string[] = [];
    for (const name of ['escape', 'out/escape', path.join(outside, 'escape'), '../outside/escape', 'out']) {
      ids.push((await db.request('POST', '', { worker: 'contained', date: '2013-01-12', job: { name } })).body.id);
    }
    for (const id of ids) expect((await waitForStatus(db, id, 'error')).error?.message).to.match(/unknown job/);
    const good = await db.request('POST', '', { worker: 'contained', date: '2013-01-12', job: 'succeeds' });
    await waitForStatus(db, good.body.id, 'done');
    expect(fs.existsSync(marker), 'the module outside the jobs folder was never loaded').to.equal(false);
  });

  it('authenticates with couchdb.username/password from the config file; the password shows in no output or log', async () => {
    const db = await startTestDb();
    const server = new URL(db.url);
    let username: string;
    let password: string;
    const plainUrl = `${server.protocol}//${server.host}`;
    if (db.kind === 'couchdb') {
      // The credentials COUCHDB_URL carries move into the config file.
      username = decodeURIComponent(server.username);
      password = decodeURIComponent(server.password);
    } else {
      // The embedded server: its generated admin adds another admin, and the tasks database is
      // opened to that user only.
      username = 'boss';
      password = PASSWORD;
      const admin = new URL(db.adminUrl);
      const asAdmin = { authorization: `Basic ${Buffer.from(`${decodeURIComponent(admin.username)}:${decodeURIComponent(admin.password)}`).toString('base64')}` };
      expect((await fetch(`${plainUrl}/_config/admins/${username}`, { method: 'PUT', headers: asAdmin, body: JSON.stringify(password) })).status).to.equal(200);
    }
    const auth = { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, 'content-type': 'application/json' };
    const security = await fetch(`${plainUrl}/${db.dbName}/_security`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ admins: { names: [], roles: [] }, members: { names: [username], roles: [] } }),
    });
    expect(security.status).to.equal(200);
    const anonymous = await fetch(`${plainUrl}/${db.dbName}/_all_docs`);
    expect(anonymous.status, 'the database is closed to anonymous readers').to.equal(401);

    const base = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as Record<string, unknown>;
    const configFile = path.join(db.root, 'config-credentials.json');
    fs.writeFileSync(configFile, JSON.stringify({ ...base, couchdb: { url: plainUrl, db: db.dbName, username, password } }));
    const env = { AFTER_HOME: db.home, AFTER_CONFIG: configFile };
    const outputs: string[] = [];
    const cli = async (args: string[]) => {
      const result = await runCli(args, { env });
      outputs.push(`after ${args.join(' ')}: ${result.stdout}${result.stderr}`);
      return result;
    };

    expect((await cli(['init'])).code).to.equal(0);
    const { child: worker } = await startWorker(db, 'private', { env });
    const added = await cli(['task', 'add', '--worker', 'private', '--date', new Date().toISOString(), '--job', 'succeeds']);
    expect(added.code, added.stderr).to.equal(0);
    const id = added.stdout.trim();
    await waitFor(async () => {
      const res = await fetch(`${plainUrl}/${db.dbName}/${encodeURIComponent(id)}`, { headers: auth });
      return ((await res.json()) as { status?: string }).status === 'done';
    }, { timeoutMs: 20_000, what: `task ${id} to be done` });
    for (const args of [['status'], ['task', 'list'], ['task', 'get', id], ['list']]) expect((await cli(args)).code, args.join(' ')).to.equal(0);

    // A wrong password: one line naming the server, never the password.
    const wrongConfig = path.join(db.root, 'config-wrong.json');
    fs.writeFileSync(wrongConfig, JSON.stringify({ ...base, couchdb: { url: plainUrl, db: db.dbName, username, password: `${PASSWORD}-wrong` } }));
    const wrong = await runCli(['status'], { env: { ...env, AFTER_CONFIG: wrongConfig } });
    outputs.push(wrong.stdout + wrong.stderr);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr.trim().split('\n')).to.have.length(1);

    worker.kill('SIGTERM');
    await worker.exited;
    outputs.push(worker.stdout, worker.stderr);
    const logDir = (base.log as { dir: string }).dir;
    const logs = fs.existsSync(logDir) ? fs.readdirSync(logDir).map((f) => fs.readFileSync(path.join(logDir, f), 'utf8')) : [];
    expect(logs.join('')).to.match(/private/);
    for (const text of [...outputs, ...logs]) {
      expect(text).to.not.contain(password);
      expect(text).to.not.contain(`${PASSWORD}-wrong`);
    }
  });

  it('a task nested 3,000 levels deep: the embedded server refuses it naming the depth, a CouchDB task runs (the worker never walks a payload); SIGTERM stays within the grace', async () => {
    const db = await startTestDb({ config: { worker: { grace_ms: 2000 } } });
    let data: unknown = 'bottom';
    for (let i = 0; i < 3000; i++) data = { a: data };
    const task = { worker: 'deep', date: new Date().toISOString(), job: 'succeeds', data };
    const { child: worker } = await startWorker(db, 'deep');
    const posted = await db.request<{ id: string; reason?: string }>('POST', '', task);
    if (db.kind === 'embedded') {
      // pouchdb-server could index no such document: it never reaches a worker.
      expect(posted.status).to.equal(400);
      expect(posted.body.reason).to.match(/data is nested more than 100 levels deep$/);
      const bulk = await db.request<Array<{ error?: string }> | { reason?: string }>('POST', '_bulk_docs', { docs: [task] });
      expect(bulk.status).to.equal(400);
    } else {
      expect(posted.status, JSON.stringify(posted.body).slice(0, 200)).to.equal(201);
      // Serialised natively (the job gets a JSON copy past structuredClone's reach), never walked.
      const done = await waitForStatus(db, posted.body.id, 'done', 20_000);
      expect(done.executions).to.equal(1);
    }
    expect(`${worker.stdout}${worker.stderr}`).to.not.match(/cannot reach CouchDB|Maximum call stack/);
    const signalled = Date.now();
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
    expect(Date.now() - signalled, 'SIGTERM to exit (grace 2 s)').to.be.below(2000 + 5000);
  });

  it('a "__proto__", "constructor" or "prototype" key inside repeat or retry is reported like any unknown key, never dropped', async () => {
    const db = await startTestDb();
    const { child: worker } = await startWorker(db, 'keys');
    // JSON text as curl sends it: "__proto__" is a key like any other (JSON.parse keeps it as one, and JSON.stringify sends it).
    const task = (field: string, json: string): string => `{"worker": "keys", "date": "2013-01-12", "job": "succeeds", "${field}": ${json}}`;
    const cases = [
      { text: task('repeat', '{"days": 1, "__proto__": {"x": 1}}'), key: '__proto__' },
      { text: task('retry', '{"limit": 2, "__proto__": {"x": 1}}'), key: '__proto__' },
      { text: task('repeat', '{"days": 1, "constructor": 1}'), key: 'constructor' },
      { text: task('repeat', '{"cron": "0 9 * * *", "prototype": 1}'), key: 'prototype' },
      { text: task('retry', '{"limit": 2, "constructor": {"x": 1}}'), key: 'constructor' },
    ];
    for (const c of cases) {
      const { status, body } = await db.request<{ id?: string; reason?: string }>('POST', '', JSON.parse(c.text));
      if (c.key === '__proto__' && db.kind === 'embedded') {
        // PouchDB would store it as {"days": 1}: refused at the door, naming where it is.
        expect(status, c.text).to.equal(400);
        expect(body.reason, c.text).to.match(/(repeat|retry)\.__proto__: a "__proto__" key would be dropped/);
        continue;
      }
      expect(status, `${c.text}: ${JSON.stringify(body)}`).to.equal(201);
      const failed = await waitForStatus(db, body.id!, 'error', 20_000);
      expect(failed.error?.message, c.text).to.match(new RegExp(`^(repeat|retry): unknown (duration )?key "${c.key}"`));
      expect(failed.executions ?? 0).to.equal(0);
    }
    expect(worker.running).to.equal(true);
  });

  it('a task over worker.max_task_size (1 MB): refused at the embedded server\'s door, in error naming its size on CouchDB, never run; a task beside it runs (issue 19, row 5)', async () => {
    const db = await startTestDb();
    const { child: worker } = await startWorker(db, 'sized');
    // 110,000 keys: about 1.5 MB of JSON, the shape that cost the most to walk.
    const data = Object.fromEntries(Array.from({ length: 110_000 }, (_, i) => [`k${i}`, i]));
    const now = new Date().toISOString();
    const big = await db.request<{ id?: string; reason?: string }>('POST', '', { worker: 'sized', date: now, job: 'succeeds', data });
    const small = await db.request<{ id: string }>('POST', '', { worker: 'sized', date: now, job: 'succeeds' });
    expect(small.status).to.equal(201);
    if (db.kind === 'embedded') {
      expect(big.status).to.equal(413);
      expect(big.body.reason).to.match(/larger than 1000000 bytes/);
    } else {
      expect(big.status).to.equal(201);
      const failed = await waitForStatus(db, big.body.id!, 'error', 20_000);
      expect(failed.error?.message).to.match(/^document: \d{7} bytes, more than the 1000000 a task may have \(worker\.max_task_size\)/);
      expect(failed.executions ?? 0).to.equal(0);
    }
    await waitForStatus(db, small.body.id, 'done', 20_000);
    expect(worker.running).to.equal(true);
  });

  it('CLI input: a missing file, malformed JSON and ids with / or .. are one line naming the problem, exit 1, no stack', async () => {
    const db = await startTestDb();
    const cases: Array<{ args: string[]; mentions: RegExp }> = [
      { args: ['task', 'add', '--file', '/nonexistent/task.json'], mentions: /\/nonexistent\/task\.json/ },
      { args: ['task', 'add', '--json', '{'], mentions: /--json/ },
      { args: ['task', 'add', '--json', '[1]'], mentions: /--json/ },
      { args: ['task', 'get', 'a/../b'], mentions: /a\/\.\.\/b/ },
      { args: ['task', 'get', '../_all_dbs'], mentions: /_all_dbs/ },
      { args: ['task', 'cancel', '../../etc/passwd'], mentions: /passwd/ },
      // A URL resolves these away: `GET /<db>/..` is the server's welcome.
      { args: ['task', 'get', '..'], mentions: /"\.\."/ },
      { args: ['task', 'get', '.'], mentions: /"\."/ },
      { args: ['task', 'cancel', '..'], mentions: /"\.\."/ },
      { args: ['task', 'reschedule', '.', '2040-01-01'], mentions: /"\."/ },
      { args: ['task', 'add', '--json', '{"_id": "..", "worker": "w", "date": "2040-01-01", "job": "succeeds"}'], mentions: /"\.\."/ },
    ];
    for (const c of cases) {
      const result = await runCli(c.args, { env: db.env });
      const what = `after ${c.args.join(' ')}: ${result.stderr}`;
      expect(result.code, what).to.equal(1);
      expect(result.stdout, what).to.equal('');
      expect(result.stderr.trim().split('\n'), what).to.have.length(1);
      expect(result.stderr, what).to.match(c.mentions);
      expect(result.stderr, what).to.not.match(/\n\s+at /);
    }
  });

  it('the embedded server listens on 127.0.0.1 only, unless configured otherwise', async function () {
    if (process.platform !== 'linux') this.skip();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bind-'));
    const port = await freePort();
    const configFile = path.join(root, 'config.json');
    // No embedded.host: the default applies.
    fs.writeFileSync(configFile, JSON.stringify({ embedded: { port, dir: path.join(root, 'data') }, log: { dir: path.join(root, 'logs') } }));
    const env = { AFTER_HOME: path.join(root, 'home'), AFTER_CONFIG: configFile };
    try {
      expect((await runCli(['db', 'start', '-b'], { env, timeoutMs: 60_000 })).code).to.equal(0);
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      const listening = ['/proc/net/tcp', '/proc/net/tcp6']
        .flatMap((file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').slice(1) : []))
        .map((line) => line.trim().split(/\s+/))
        // state 0A = LISTEN
        .filter((cols) => cols[1]!.endsWith(`:${hexPort}`) && cols[3] === '0A')
        .map((cols) => cols[1]!.split(':')[0]);
      expect(listening).to.deep.equal(['0100007F']);
    } finally {
      await runCli(['db', 'stop'], { env, timeoutMs: 60_000 });
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

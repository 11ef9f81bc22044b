/**
 * The `after` command line as a user meets it: `node bin/after ...` as child processes, with
 * a temporary AFTER_HOME and config, against a database of the test's own. What is asserted
 * is what a user sees: exit codes, one-line errors, printed ids and tables, files on disk,
 * processes alive or gone, and never a password.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { TaskDoc } from '../../src/types';
import { FIXTURE_JOBS, REPO_ROOT, freePort, isAlive, pm2DaemonPid, runCli, spawnCli, stopPm2Daemon, useSuiteDb, waitFor, waitForStatus, type CliResult } from '../helpers/index';

const PM2_BIN = path.join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const PASSWORD = 's3cret';

/** A failed command as the user sees it: non-zero, one line `after: ...`, no stack trace. */
function expectOneLineError(result: CliResult, mentions?: RegExp): void {
  const where = `stdout: ${result.stdout}\nstderr: ${result.stderr}`;
  expect(result.code, where).to.not.equal(0);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, where).to.have.length(1);
  expect(lines[0], where).to.match(/^after: \S/);
  expect(result.stderr, where).not.to.match(/^\s+at /m);
  if (mentions) expect(lines[0], where).to.match(mentions);
}

function expectOk(result: CliResult): void {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0);
}

describe('cli', function () {
  this.timeout(120_000);
  const db = useSuiteDb();
  const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
    runCli(args, { env: { ...db.env, ...env }, ...(input !== undefined ? { input } : {}) });

  describe('usage', () => {
    const helpOf = [
      [],
      ['db'],
      ['db', 'start'],
      ['db', 'stop'],
      ['db', 'status'],
      ['init'],
      ['start'],
      ['stop'],
      ['list'],
      ['log'],
      ['clean'],
      ['jobs'],
      ['task'],
      ['task', 'add'],
      ['task', 'get'],
      ['task', 'list'],
      ['task', 'cancel'],
      ['task', 'reschedule'],
      ['task', 'delete'],
      ['status'],
    ];
    it('every command has --help, exiting 0 (even beside a broken config file)', async () => {
      const broken = path.join(db.root, 'broken-config.json');
      fs.writeFileSync(broken, '{ not json');
      const results = await Promise.all(helpOf.map((args) => cli([...args, '--help'], { AFTER_CONFIG: broken })));
      results.forEach((result, i) => {
        expectOk(result);
        expect(result.stdout, `after ${helpOf[i]!.join(' ')} --help`).to.match(/^Usage: after/);
      });
    });

    it('-V prints the version', async () => {
      const result = await cli(['-V']);
      expectOk(result);
      expect(result.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
    });

    const badUsage: { args: string[]; mentions: RegExp }[] = [
      { args: [], mentions: /needs a command/ },
      { args: ['bogus'], mentions: /bogus/ },
      { args: ['task'], mentions: /add, get, list/ },
      { args: ['db', 'restart'], mentions: /start, stop, status/ },
      { args: ['start'], mentions: /name/ },
      { args: ['start', '../etc'], mentions: /worker name/ },
      { args: ['stop', 'a/b'], mentions: /worker name/ },
      { args: ['start', 'w', '--concurrency', 'lots'], mentions: /--concurrency/ },
      { args: ['db', 'start', '--port', '99999'], mentions: /--port/ },
      { args: ['task', 'add', '--worker', 'w'], mentions: /--date/ },
      { args: ['task', 'add', '--json', '{'], mentions: /--json/ },
      { args: ['task', 'add', '--worker', 'w', '--date', 'tomorrow', '--job', 'x'], mentions: /date/ },
      { args: ['task', 'add', '--worker', 'w', '--date', '2030-01-01', '--job', 'x', '--args', '{}'], mentions: /--args/ },
      { args: ['task', 'add', '--json', '{"worker": "w", "date": "2030-01-01", "job": "x", "repeat": {"fortnights": 1}}'], mentions: /repeat/ },
      { args: ['task', 'add', '--json', '{}', '--worker', 'w'], mentions: /--json/ },
      { args: ['task', 'reschedule', 'some-id', 'next week'], mentions: /date/ },
      { args: ['task', 'list', '--status', 'finished'], mentions: /--status/ },
      { args: ['task', 'list', '--limit', '0'], mentions: /--limit/ },
      { args: ['log', 'nobody'], mentions: /no log for worker nobody/ },
      { args: ['clean', 'nobody'], mentions: /no log for worker nobody/ },
      { args: ['stop', 'nobody'], mentions: /nobody/ },
      { args: ['jobs', '--jobs', '/nonexistent/jobs'], mentions: /\/nonexistent\/jobs/ },
      { args: ['start', 'w', '-b', '--jobs', '/nonexistent/jobs'], mentions: /\/nonexistent\/jobs/ },
    ];
    for (const c of badUsage) {
      it(`after ${c.args.join(' ')}: one line, non-zero, no stack`, async () => {
        expectOneLineError(await cli(c.args), c.mentions);
      });
    }

    it('a malformed config file is one line naming the file', async () => {
      const broken = path.join(db.root, 'bad-field.json');
      fs.writeFileSync(broken, JSON.stringify({ worker: { concurrency: 'many' } }));
      expectOneLineError(await cli(['status'], { AFTER_CONFIG: broken }), /bad-field\.json.*worker\.concurrency/);
    });

    it('--verbose adds the stack trace to an error', async () => {
      const result = await cli(['--verbose', 'task', 'get', 'x'], { AFTER_COUCHDB_URL: `http://127.0.0.1:${await freePort()}` });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/^after: /);
      expect(result.stderr).to.match(/^\s+at /m);
    });
  });

  describe('db start|status|stop', () => {
    let home: string;
    beforeEach(() => (home = fs.mkdtempSync(path.join(db.root, 'db-cmd-'))));
    afterEach(async () => {
      await cli(['db', 'stop'], { AFTER_HOME: home });
    });

    it('starts the embedded server in the background, reports it, and stops it', async () => {
      const env = { AFTER_HOME: home };
      const port = await freePort();
      const dir = path.join(home, 'data');

      const before = await cli(['db', 'status'], env);
      expect(before.code, 'status before start').to.equal(3);

      const started = await cli(['db', 'start', '-b', '--port', String(port), '--dir', dir], env);
      expectOk(started);
      expect(started.stdout).to.contain(`http://127.0.0.1:${port}`);
      const pid = Number(/pid (\d+)/.exec(started.stdout)?.[1]);
      expect(isAlive(pid)).to.equal(true);
      const welcome = await fetch(`http://127.0.0.1:${port}/`);
      expect(welcome.status).to.equal(200);
      await welcome.arrayBuffer();

      const status = await cli(['db', 'status'], env);
      expectOk(status);
      expect(status.stdout).to.contain(`pid ${pid}`).and.to.contain(String(port));

      expectOneLineError(await cli(['db', 'start', '-b', '--port', String(port), '--dir', dir], env), /already runs/);

      const stopped = await cli(['db', 'stop'], env);
      expectOk(stopped);
      expect(isAlive(pid)).to.equal(false);
      expect((await cli(['db', 'status'], env)).code).to.equal(3);
    });

    it('in the foreground, stays until Ctrl-C, then exits 0 with the server gone', async () => {
      const port = await freePort();
      const child = spawnCli(['db', 'start', '--port', String(port), '--dir', path.join(home, 'data')], { env: { ...db.env, AFTER_HOME: home } });
      const [, pid] = (await child.waitForOutput(/pid (\d+)/, 30_000)) as unknown as [string, string];
      child.kill('SIGINT');
      expect(await child.exited).to.equal(0);
      expect(isAlive(Number(pid))).to.equal(false);
    });
  });

  describe('init', () => {
    const fresh = useSuiteDb({ init: false });

    it('creates the database and its indexes, and a second run changes nothing', async () => {
      const first = await runCli(['init'], { env: fresh.env });
      expectOk(first);
      expect(first.stdout).to.contain(fresh.dbName).and.to.match(/created/);
      const second = await runCli(['init'], { env: fresh.env });
      expectOk(second);
      expect(second.stdout).not.to.match(/created|updated/);
      expect(second.stdout).to.match(/unchanged/);
    });
  });

  describe('task commands', () => {
    const worker = 'cli-tasks';

    it('add (flags and --json), get, list, cancel, reschedule, delete', async () => {
      const byFlags = await cli([
        'task', 'add', '--worker', worker, '--date', '2030-01-12T10:00:00Z', '--job', 'succeeds',
        '--args', '["a", 1]', '--data', '{"customer": 42}', '--repeat', 'P1D', '--id', 'cli-flags',
      ]);
      expectOk(byFlags);
      expect(byFlags.stdout.trim()).to.equal('cli-flags');

      const byJson = await cli(['task', 'add', '--json', JSON.stringify({ worker, date: '2030-01-11', job: 'succeeds', custom: { kept: true } })]);
      expectOk(byJson);
      const jsonId = byJson.stdout.trim();
      expect(jsonId).to.match(/^\S+$/);

      const byStdin = await cli(['task', 'add', '--file', '-'], {}, JSON.stringify({ worker, date: '2030-01-13', job: 'succeeds' }));
      expectOk(byStdin);

      expectOneLineError(await cli(['task', 'add', '--worker', worker, '--date', '2030-01-12', '--job', 'x', '--id', 'cli-flags']), /exists/);

      const got = await cli(['task', 'get', 'cli-flags']);
      expectOk(got);
      const doc = JSON.parse(got.stdout) as TaskDoc;
      expect(doc).to.deep.include({
        worker,
        date: '2030-01-12T10:00:00Z',
        job: { name: 'succeeds', arguments: ['a', 1] },
        data: { customer: 42 },
        repeat: 'P1D',
        status: 'waiting',
      });
      expect((JSON.parse((await cli(['task', 'get', jsonId])).stdout) as TaskDoc).custom).to.deep.equal({ kept: true });

      const listed = await cli(['task', 'list', '--worker', worker, '--json']);
      expectOk(listed);
      const docs = JSON.parse(listed.stdout) as TaskDoc[];
      expect(docs.map((d) => d.date)).to.deep.equal(['2030-01-11', '2030-01-12T10:00:00Z', '2030-01-13']);

      const table = await cli(['task', 'list', '--worker', worker, '--limit', '2']);
      expectOk(table);
      const rows = table.stdout.trimEnd().split('\n');
      expect(rows[0]).to.match(/^ID\s+WORKER\s+JOB\s+SCHEDULE\s+NEXT\s+STATUS\s+LAST RUN$/);
      expect(rows).to.have.length(3);
      expect(rows[2]).to.match(/^cli-flags\s+cli-tasks\s+succeeds\s+every 1d \(UTC\)\s+2030-01-12T10:00:00Z\s+waiting\s+never$/);

      expectOk(await cli(['task', 'cancel', 'cli-flags']));
      expect((await db.request<TaskDoc>('GET', 'cli-flags')).body.status).to.equal('cancel');

      expectOk(await cli(['task', 'reschedule', 'cli-flags', '2031-02-03T04:05:06Z']));
      const moved = (await db.request<TaskDoc>('GET', 'cli-flags')).body;
      expect(moved).to.include({ status: 'reschedule', date: '2031-02-03T04:05:06Z' });

      const onlyRescheduled = JSON.parse((await cli(['task', 'list', '--status', 'reschedule', '--json'])).stdout) as TaskDoc[];
      expect(onlyRescheduled.map((d) => d._id)).to.deep.equal(['cli-flags']);

      expectOk(await cli(['task', 'delete', 'cli-flags']));
      expect((await db.request('GET', 'cli-flags')).status).to.equal(404);
      expectOneLineError(await cli(['task', 'get', 'cli-flags']), /not found/);
      expectOneLineError(await cli(['task', 'cancel', 'no-such-task']), /not found/);
    });

    it('status shows the database and counts by worker and status', async () => {
      const name = 'cli-status';
      for (const status of ['waiting', 'waiting', 'done']) {
        const res = await db.request('POST', '', { worker: name, date: '2030-01-01', job: 'succeeds', status });
        expect(res.status).to.equal(201);
      }
      const result = await cli(['status']);
      expectOk(result);
      expect(result.stdout).to.contain(`${db.displayUrl}/${db.dbName}`);
      expect(result.stdout).to.match(/\((couchdb|pouchdb-server) /);
      const lines = result.stdout.trimEnd().split('\n');
      const header = lines.find((l) => l.startsWith('WORKER'))!.split(/\s+/);
      const row = lines.find((l) => l.startsWith(`${name} `))!.split(/\s+/);
      expect(row[header.indexOf('WAITING')]).to.equal('2');
      expect(row[header.indexOf('DONE')]).to.equal('1');
      expect(row[header.indexOf('TOTAL')]).to.equal('3');
    });
  });

  describe('jobs', () => {
    it('lists the jobs of a folder', async () => {
      const result = await cli(['jobs', '--jobs', FIXTURE_JOBS]);
      expectOk(result);
      expect(result.stdout).to.match(/^\s+succeeds\s+\S*succeeds\.js$/m);
      expect(result.stdout).to.match(/^\s+webhook\s+built-in$/m);
      expect(result.stdout, 'exec is off unless turned on').to.not.match(/^\s+exec\s/m);
    });

    it('names every broken module and exits 1', async () => {
      const dir = fs.mkdtempSync(path.join(db.root, 'jobs-'));
      fs.writeFileSync(path.join(dir, 'fine.js'), 'module.exports = async () => 1;\n');
      fs.writeFileSync(path.join(dir, 'broken.js'), 'module.exports = ;\n');
      fs.writeFileSync(path.join(dir, 'not-a-function.js'), 'module.exports = 42;\n');
      const result = await cli(['jobs', '--jobs', dir]);
      expect(result.code).to.equal(1);
      expect(result.stdout).to.match(/^\s+fine\s/m);
      expect(result.stdout).to.match(/broken\.js/);
      expect(result.stdout).to.match(/not-a-function\.js/);
      expect(result.stderr).to.match(/^after: .*2 problems/);
    });
  });

  describe('log', () => {
    it('-n shows the last lines; -f follows new lines, also after clean, until Ctrl-C', async () => {
      const logDir = db.config().log.dir;
      fs.mkdirSync(logDir, { recursive: true });
      const file = path.join(logDir, 'hand-written.log');
      fs.writeFileSync(file, Array.from({ length: 60 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');

      const last = await cli(['log', 'hand-written', '-n', '3']);
      expectOk(last);
      expect(last.stdout).to.equal('line 58\nline 59\nline 60\n');
      expect((await cli(['log', 'hand-written'])).stdout.trimEnd().split('\n')).to.have.length(50);

      const follower = spawnCli(['log', 'hand-written', '-f', '-n', '1'], { env: db.env });
      await follower.waitForOutput(/line 60/);
      fs.appendFileSync(file, 'appended\n');
      await follower.waitForOutput(/appended/);
      expectOk(await cli(['clean', 'hand-written']));
      expect(fs.statSync(file).size).to.equal(0);
      fs.appendFileSync(file, 'after clean\n');
      await follower.waitForOutput(/after clean/);
      follower.kill('SIGINT');
      expect(await follower.exited).to.equal(0);
    });
  });

  describe('workers', () => {
    const worker = 'cli-bg';
    afterEach(async () => {
      await stopPm2Daemon(db.home);
    });

    it('start -b runs it under pm2; list, log, clean; stop removes it and the pm2 daemon', async () => {
      expect((await cli(['list'])).stdout.trim()).to.equal('no workers');
      expect(pm2DaemonPid(db.home), 'list must not start a pm2 daemon').to.equal(null);

      const started = await cli(['start', worker, '-b', '--jobs', FIXTURE_JOBS, '--concurrency', '2']);
      expectOk(started);
      expectOneLineError(await cli(['start', worker, '-b', '--jobs', FIXTURE_JOBS]), /already/);

      const id = `cli-bg-${Date.now()}`;
      expectOk(await cli(['task', 'add', '--worker', worker, '--date', new Date().toISOString(), '--job', 'succeeds', '--id', id]));
      await waitForStatus(db, id, 'done', 30_000);

      const listed = await cli(['list']);
      expectOk(listed);
      const row = listed.stdout.split('\n').find((line) => line.startsWith(`${worker} `));
      expect(row, listed.stdout).to.match(/^cli-bg\s+online\s+\d+\s+\S+/);
      const pid = Number(row!.split(/\s+/)[2]);
      expect(isAlive(pid)).to.equal(true);

      const logged = await cli(['log', worker, '-n', '5']);
      expectOk(logged);
      const lines = logged.stdout.trimEnd().split('\n');
      expect(lines.length).to.be.within(1, 5);
      expect(logged.stdout).to.contain(id);

      const logFile = path.join(db.config().log.dir, `${worker}.log`);
      expectOk(await cli(['clean', worker]));
      expect(fs.statSync(logFile).size).to.equal(0);

      const stopUnknown = await cli(['stop', 'not-started']);
      expectOneLineError(stopUnknown, /cli-bg/);

      const stopped = await cli(['stop', worker]);
      expectOk(stopped);
      expect(isAlive(pid), 'the worker process has exited').to.equal(false);
      expect(pm2DaemonPid(db.home), 'no pm2 daemon is left').to.equal(null);
      expect((await cli(['list'])).stdout.trim()).to.equal('no workers');
      // The worker stopped gracefully (SIGINT, then its own stop) and logged it.
      expect(fs.readFileSync(logFile, 'utf8')).to.match(/stopped/);
      // Against a CouchDB with credentials (COUCHDB_URL), none of this printed its password.
      const password = decodeURIComponent(new URL(db.url).password);
      if (password) {
        for (const result of [started, listed, logged, stopUnknown, stopped]) {
          expect(result.stdout + result.stderr).not.to.contain(password);
        }
      }
    });

    it('in the foreground, Ctrl-C stops it cleanly; a second Ctrl-C exits at once with 130', async () => {
      const name = 'cli-fg';
      const id = `cli-fg-${Date.now()}`;
      expectOk(await cli(['task', 'add', '--worker', name, '--date', new Date().toISOString(), '--job', 'hangs', '--id', id]));
      const child = spawnCli(['start', name, '--jobs', FIXTURE_JOBS], { env: db.env });
      await waitForStatus(db, id, 'running', 30_000);
      child.kill('SIGINT');
      await child.waitForOutput(/stopping worker/);
      expect(child.running, 'waits for the running job').to.equal(true);
      child.kill('SIGINT');
      expect(await child.exited).to.equal(130);

      const clean = spawnCli(['start', 'cli-fg-idle', '--jobs', FIXTURE_JOBS], { env: db.env });
      await clean.waitForOutput(/ready/, 30_000);
      clean.kill('SIGTERM');
      expect(await clean.exited).to.equal(0);
    });
  });

  describe('credentials', () => {
    let home: string;
    let secretUrl: string;
    beforeEach(async () => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'after-cli-secret-'));
      // Nothing listens there: every command fails, and its error must still hide the password.
      secretUrl = `http://user:${PASSWORD}@127.0.0.1:${await freePort()}`;
    });
    afterEach(async () => {
      await stopPm2Daemon(home);
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('no command prints the password, even when the database is unreachable', async () => {
      const env = { AFTER_COUCHDB_URL: secretUrl, AFTER_HOME: home };
      const commands = [
        ['init'],
        ['status'],
        ['task', 'add', '--worker', 'w', '--date', '2030-01-01', '--job', 'succeeds'],
        ['task', 'get', 'x'],
        ['task', 'list'],
        ['task', 'cancel', 'x'],
        ['task', 'reschedule', 'x', '2030-01-01'],
        ['task', 'delete', 'x'],
        ['--verbose', 'status'],
      ];
      for (const args of commands) {
        const result = await cli(args, env);
        expect(result.code, `after ${args.join(' ')}`).to.equal(1);
        expect(result.stdout + result.stderr, `after ${args.join(' ')}`).not.to.contain(PASSWORD);
        if (args[0] !== '--verbose') expectOneLineError(result, /127\.0\.0\.1/);
      }
    });

    it('a background worker gets the URL through a socket, never through pm2 or a file', async () => {
      // A worker still waiting for its database stops only when pm2's kill_timeout
      // (grace_ms + 5 s) runs out: keep that short.
      const config = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as Record<string, unknown>;
      const configFile = path.join(home, 'config.json');
      fs.writeFileSync(configFile, JSON.stringify({ ...config, worker: { grace_ms: 0 } }));
      const env = { AFTER_COUCHDB_URL: secretUrl, AFTER_HOME: home, AFTER_CONFIG: configFile };
      const started = await cli(['start', 'secretive', '-b', '--jobs', FIXTURE_JOBS], env);
      expectOk(started);
      expect(started.stdout + started.stderr).not.to.contain(PASSWORD);

      const secrets = path.join(home, 'secrets');
      expect(fs.statSync(secrets).mode & 0o777).to.equal(0o700);

      // The worker runs (waiting for its database) and logs where it connects, scrubbed: it
      // got the URL through the socket, which is gone once the keeper took it.
      const logFile = path.join(db.config().log.dir, 'secretive.log');
      const port = new URL(secretUrl).port;
      await waitFor(async () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes(`127.0.0.1:${port}`), {
        timeoutMs: 20_000,
        what: 'the worker to log its connection attempts',
      });
      expect(fs.readdirSync(secrets), 'nothing in the secrets folder').to.deep.equal([]);
      const jlist = spawnSync(process.execPath, [PM2_BIN, 'jlist'], { env: { ...process.env, PM2_HOME: path.join(home, 'pm2') }, encoding: 'utf8' });
      expect(jlist.stdout).to.contain('after-secretive');
      expect(jlist.stdout).to.contain('AFTER_CREDENTIALS_SOCKET');
      expect(jlist.stdout).not.to.contain(PASSWORD);

      for (const args of [['list'], ['log', 'secretive'], ['stop', 'secretive']]) {
        const result = await cli(args, env);
        expectOk(result);
        expect(result.stdout + result.stderr, `after ${args.join(' ')}`).not.to.contain(PASSWORD);
      }
      for (const file of [logFile, ...fs.readdirSync(path.join(home, 'pm2', 'logs')).map((f) => path.join(home, 'pm2', 'logs', f))]) {
        expect(fs.readFileSync(file, 'utf8'), file).not.to.contain(PASSWORD);
      }
      expect(fs.readdirSync(secrets), 'nothing left in the secrets folder').to.deep.equal([]);
      expect(pm2DaemonPid(home)).to.equal(null);
    });
  });
});

/**
 * No credential within a job's reach: a worker started with a password in AFTER_COUCHDB_URL,
 * in the foreground or in the background, runs tasks whose program reads its parent's
 * environment (`/proc/$PPID/environ`, the worker's) and the background worker's secrets file,
 * and whose JS job looks at everything it is given. None of them finds the password.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { FIXTURE_JOBS, runCli, runTask, startWorker, useSuiteDb, waitFor, type TestDb } from '../helpers/index';

/**
 * The test database's URL with a password in it, and that password: COUCHDB_URL's own, or the
 * admin the embedded server generated at its first start.
 */
async function urlWithPassword(db: TestDb): Promise<{ url: string; password: string }> {
  const parsed = new URL(db.adminUrl);
  expect(parsed.password, 'a password in the admin URL').to.not.equal('');
  return { url: db.adminUrl, password: decodeURIComponent(parsed.password) };
}

describe('credentials out of a job\'s reach', function () {
  this.timeout(180_000);
  if (!fs.existsSync('/proc/self/environ')) return;

  const db = useSuiteDb({
    config: {
      commands: {
        // What a hostile task writer would try: the worker's environment, and the secrets file.
        'parent-environ': {
          argv: ['/bin/sh', '-c', 'tr "\\000" "\\n" < /proc/$PPID/environ; for f in "$HOME_SECRETS"/*; do echo "$f:"; cat "$f"; done 2>&1; true'],
          env: { HOME_SECRETS: '' },
        },
      },
    },
  });
  let url: string;
  let password: string;

  before(async () => {
    ({ url, password } = await urlWithPassword(db));
    // The secrets folder of this database's AFTER_HOME, for the program to look into.
    const config = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as { commands: Record<string, { env: Record<string, string> }> };
    config.commands['parent-environ']!.env.HOME_SECRETS = path.join(db.home, 'secrets');
    fs.writeFileSync(db.env.AFTER_CONFIG!, JSON.stringify(config, null, 2));
  });

  /**
   * The worker's environment: the database with a password in AFTER_COUCHDB_URL. The test
   * run's own COUCHDB_URL (which spawnCli passes on, and which holds the same password) is
   * emptied: it is this harness's variable, not one a worker is started with.
   */
  function workerEnv(): Record<string, string> {
    return { ...db.env, AFTER_COUCHDB_URL: url, COUCHDB_URL: '' };
  }

  const run = (worker: string, job: string): Promise<TaskDoc> => runTask(db, { worker, job }, 30_000);

  function expectNothingFound(doc: TaskDoc): void {
    expect(doc.status, JSON.stringify(doc.error)).to.equal('done');
    expect(JSON.stringify(doc.result)).to.not.contain(password);
  }

  it('a foreground worker: its environment (/proc/$PPID/environ), ctx and process.env hold no password', async () => {
    const { child: worker } = await startWorker(db, 'fg-secret', { env: workerEnv() });

    const environ = await run('fg-secret', 'parent-environ');
    expectNothingFound(environ);
    const stdout = (environ.result as { stdout: string }).stdout;
    expect(stdout, 'the program did read the worker\'s environment').to.contain(`AFTER_HOME=${db.home}`);
    expect(stdout).to.not.match(/^AFTER_COUCHDB_URL=/m);

    const context = await run('fg-secret', 'reports-context');
    expectNothingFound(context);
    expect((context.result as { ctxFields: string[] }).ctxFields).to.deep.equal(['doc', 'later', 'log', 'release', 'retry', 'runs', 'signal']);

    // The process the user started still answers SIGTERM with a clean stop, exit 0.
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
    expect(worker.stdout + worker.stderr).to.not.contain(password);
  });

  it('a background worker: its secrets file is gone while it runs, written back for a restart, asked for after a SIGKILL, removed by stop', async () => {
    const name = 'bg-secret';
    const env = workerEnv();
    const secrets = path.join(db.home, 'secrets', `${name}.json`);
    const logFile = path.join(db.config().log.dir, `${name}.log`);
    const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
    const readyLines = (): number => log().split('\n').filter((line) => line.includes(`worker ${name} ready`)).length;
    const workerPid = async (): Promise<number | undefined> => {
      const listed = await runCli(['list'], { env });
      const match = new RegExp(`^${name}\\s+online\\s+(\\d+)`, 'm').exec(listed.stdout);
      return match ? Number(match[1]) : undefined;
    };

    const started = await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env });
    expect(started.code, started.stderr).to.equal(0);
    await waitFor(async () => readyLines() === 1, { timeoutMs: 30_000, what: 'the background worker to be ready' });
    expect(fs.existsSync(secrets), 'the worker took its secrets file').to.equal(false);

    const environ = await run(name, 'parent-environ');
    expectNothingFound(environ);
    const stdout = (environ.result as { stdout: string }).stdout;
    expect(stdout).to.contain(`AFTER_SECRETS_FILE=${secrets}`);
    expect(stdout).to.not.contain(`${secrets}:`);
    expectNothingFound(await run(name, 'reports-context'));

    // Ended by a signal, it writes its credentials back; pm2 starts it again and it reads them.
    const first = await workerPid();
    expect(first).to.be.a('number');
    process.kill(first!, 'SIGTERM');
    await waitFor(async () => readyLines() === 2, { timeoutMs: 60_000, what: 'the worker to be restarted by pm2' });
    expect(fs.existsSync(secrets), 'the restarted worker took its secrets file').to.equal(false);
    expectNothingFound(await run(name, 'parent-environ'));

    // Killed with SIGKILL it cannot: the next one asks for them in one line and waits.
    const second = await waitFor(async () => {
      const pid = await workerPid();
      return pid !== undefined && pid !== first ? pid : undefined;
    }, { timeoutMs: 10_000, what: 'the restarted worker\'s pid' });
    process.kill(second, 'SIGKILL');
    await waitFor(async () => log().includes(`run 'after start ${name} -b' again to hand it its credentials`), {
      timeoutMs: 30_000,
      what: 'the restarted worker to ask for its credentials',
    });
    const again = await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('was waiting for its credentials');
    await waitFor(async () => readyLines() === 3, { timeoutMs: 30_000, what: 'the worker to start with its credentials' });
    expect(fs.existsSync(secrets)).to.equal(false);
    expectNothingFound(await run(name, 'parent-environ'));

    const stopped = await runCli(['stop', name], { env, timeoutMs: 60_000 });
    expect(stopped.code, stopped.stderr).to.equal(0);
    expect(fs.existsSync(secrets), 'nothing left on disk once stopped').to.equal(false);
    for (const text of [started.stdout, started.stderr, again.stdout, stopped.stdout, log()]) expect(text).to.not.contain(password);
  });
});

/**
 * No credential within a job's reach (issue 11 row 2, issue 19 row 2): a worker started with a
 * password in AFTER_COUCHDB_URL, in the foreground or in the background, runs the probe of issue
 * 19 — a program that reads its parent's environment and secrets folder, leaves a loop behind
 * in a session of its own with a cleared environment (out of reach of the process-tree killer),
 * which signals the worker and copies every file that appears in the secrets folder — while the
 * worker is stopped and started again. The loop finds nothing:
 * - programs as the worker's own user: no file ever holds the credentials (the keeper holds
 *   them in memory and restarts the worker itself; `after start -b` hands them over through a
 *   socket);
 * - programs as another user (a root worker's default, `nobody`): the program cannot even read
 *   the worker's environment, its AFTER_HOME, or signal it.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { FIXTURE_JOBS, isAlive, runCli, runTask, startWorker, useSuiteDb, waitFor, type TestDb } from '../helpers/index';

/** The test database's URL with a password in it (COUCHDB_URL's, or the embedded server's admin), and that password. */
function urlWithPassword(db: TestDb): { url: string; password: string } {
  const parsed = new URL(db.adminUrl);
  expect(parsed.password, 'a password in the admin URL').to.not.equal('');
  return { url: db.adminUrl, password: decodeURIComponent(parsed.password) };
}

/**
 * Issue 19's probe, as a command: `$1` the loot file, `$SECRETS` the folder the credentials of a
 * background worker were handed over in. Prints what it read of its parent's (the worker's)
 * environment; leaves behind, for `$2` seconds, a loop in a session of its own with a cleared
 * environment that sends the worker SIGTERM and copies every file that appears in `$SECRETS`.
 * The program ends once the loop runs with its cleared environment (the process-tree killer
 * finds a process by the marker in its environment: `setsid` and `env` still carry it a moment).
 */
const PROBE = [
  'loot="$1"; seconds="$2"',
  'echo "uid=$(id -u)"',
  'tr "\\000" "\\n" < /proc/$PPID/environ 2>&1 || echo "environ: unreadable"',
  'ls -a "$SECRETS" 2>&1',
  'setsid env -i /bin/sh -c \'dir="$1"; loot="$2"; worker="$3"; seconds="$4"',
  '  echo started >> "$loot.log"',
  '  kill -TERM "$worker" 2>/dev/null && echo "signalled $worker" >> "$loot.log"',
  '  i=0; while [ $i -lt $((seconds * 20)) ]; do',
  '    for f in "$dir"/* "$dir"/.*; do [ -f "$f" ] && cat "$f" >> "$loot" 2>/dev/null; done',
  '    sleep 0.05; i=$((i + 1))',
  '  done; echo done >> "$loot.log"\' probe-loop "$SECRETS" "$loot" "$PPID" "$seconds" < /dev/null > /dev/null 2>&1 &',
  'echo "loop=$!"',
  // Until the loop runs with its cleared environment: before that the run's marker would find it.
  'while [ ! -s "$loot.log" ]; do sleep 0.01; done',
].join('\n');

describe('credentials out of a job\'s reach', function () {
  this.timeout(240_000);
  if (!fs.existsSync('/proc/self/environ')) return;

  /** Where the probe keeps what it found: writable by whatever user the programs run as. */
  let lootDir: string;
  const loops: number[] = [];
  before(() => {
    lootDir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-loot-'));
    fs.chmodSync(lootDir, 0o777);
  });
  after(() => {
    for (const pid of loops) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(lootDir, { recursive: true, force: true });
  });

  /** A suite database whose workers run the probe as `programUser` (null: the default). */
  function suite(programUser: string | null): TestDb {
    return useSuiteDb({
      config: {
        worker: { program_user: programUser },
        commands: { probe: { argv: ['/bin/sh', '-c', PROBE, 'probe'], arguments: 'append', env: { SECRETS: '' } } },
      },
    });
  }

  /** Points the probe at this database's secrets folder (the folder an attacker would find from AFTER_HOME). */
  function aimProbe(db: TestDb): void {
    const config = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as { commands: { probe: { env: Record<string, string> } } };
    config.commands.probe.env.SECRETS = path.join(db.home, 'secrets');
    fs.writeFileSync(db.env.AFTER_CONFIG!, JSON.stringify(config, null, 2));
  }

  /**
   * The worker's environment: the database with a password in AFTER_COUCHDB_URL. The test run's
   * own COUCHDB_URL (which spawnCli passes on, and which holds the same password) is emptied:
   * it is this harness's variable, not one a worker is started with.
   */
  const workerEnv = (db: TestDb): Record<string, string> => ({ ...db.env, AFTER_COUCHDB_URL: urlWithPassword(db).url, COUCHDB_URL: '' });

  /** Runs the probe as a task of `worker`; returns what it printed and where its loop keeps its loot. */
  async function probe(db: TestDb, worker: string, seconds: number): Promise<{ printed: string; loot: string; loop: number }> {
    const loot = path.join(lootDir, `${worker}-${Date.now()}`);
    const doc = await runTask(db, { worker, job: { name: 'probe', arguments: [loot, String(seconds)] } }, 30_000);
    expect(doc.status, JSON.stringify(doc.error)).to.equal('done');
    const printed = (doc.result as { stdout: string }).stdout;
    const loop = Number(/^loop=(\d+)$/m.exec(printed)?.[1]);
    loops.push(loop);
    return { printed, loot, loop };
  }

  const lootOf = (loot: string): string => (fs.existsSync(loot) ? fs.readFileSync(loot, 'utf8') : '');

  describe('programs as the worker\'s own user', () => {
    const db = suite(os.userInfo().username);
    before(() => aimProbe(db));

    it('a foreground worker: its environment (/proc/$PPID/environ), ctx and process.env hold no password', async () => {
      const { password } = urlWithPassword(db);
      const { child: worker } = await startWorker(db, 'fg-secret', { env: workerEnv(db) });
      const context = await runTask(db, { worker: 'fg-secret', job: 'reports-context' }, 30_000);
      expect(JSON.stringify(context.result)).to.not.contain(password);
      expect((context.result as { ctxFields: string[] }).ctxFields).to.deep.equal(['doc', 'later', 'log', 'release', 'retry', 'runs', 'signal']);

      const found = await probe(db, 'fg-secret', 1);
      expect(found.printed, 'the program did read the worker\'s environment').to.contain(`AFTER_HOME=${db.home}`);
      expect(found.printed).to.not.match(/^AFTER_COUCHDB_URL=/m);
      expect(found.printed).to.not.contain(password);

      // The loop's SIGTERM reached the worker, which stopped cleanly: the process the user started exits 0.
      expect(await worker.exited).to.equal(0);
      expect(worker.stdout + worker.stderr).to.not.contain(password);
    });

    it('a background worker: the probe\'s loop signals it and watches its secrets folder through a stop and a start; no file ever holds the password', async () => {
      const { password } = urlWithPassword(db);
      const name = 'bg-secret';
      const env = workerEnv(db);
      const logFile = path.join(db.config().log.dir, `${name}.log`);
      const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
      const readyLines = (): number => log().split('\n').filter((line) => line.includes(`worker ${name} ready`)).length;

      const started = await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env });
      expect(started.code, started.stderr).to.equal(0);
      await waitFor(async () => readyLines() === 1, { timeoutMs: 30_000, what: 'the background worker to be ready' });

      const found = await probe(db, name, 40);
      expect(found.printed).to.not.contain(password);
      expect(found.printed, 'the worker\'s environment names no secrets file').to.not.match(/^AFTER_SECRETS_FILE=/m);
      // The loop sent the worker SIGTERM: its keeper started it again, with the credentials it holds.
      await waitFor(async () => readyLines() === 2, { timeoutMs: 30_000, what: 'the keeper to start the worker again' }).catch((err: Error) => {
        throw new Error(`${err.message}; probe printed: ${found.printed}; loop: ${fs.existsSync(`${found.loot}.log`) ? fs.readFileSync(`${found.loot}.log`, 'utf8') : '(nothing)'}; log: ${log()}`);
      });
      expect(log()).to.match(new RegExp(`worker ${name} (was ended by SIGTERM|exited with code 0) without being asked to stop; starting it again`));
      expect(fs.readFileSync(`${found.loot}.log`, 'utf8')).to.match(/^signalled \d+$/m);

      // A stop and a start under pm2 while the loop still watches: the credentials go through a socket.
      const stopped = await runCli(['stop', name], { env, timeoutMs: 60_000 });
      expect(stopped.code, stopped.stderr).to.equal(0);
      const again = await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env });
      expect(again.code, again.stderr).to.equal(0);
      await waitFor(async () => readyLines() === 3, { timeoutMs: 30_000, what: 'the worker to start again with its credentials' });
      const context = await runTask(db, { worker: name, job: 'reports-context' }, 30_000);
      expect(JSON.stringify(context.result)).to.not.contain(password);

      expect(isAlive(found.loop), 'the loop still watches').to.equal(true);
      await runCli(['stop', name], { env, timeoutMs: 60_000 });
      process.kill(found.loop, 'SIGKILL');
      expect(lootOf(found.loot), 'what the loop copied').to.not.contain(password);
      expect(fs.readdirSync(path.join(db.home, 'secrets')).filter((file) => !file.endsWith('.sock')), 'files in the secrets folder').to.deep.equal([]);
      for (const text of [started.stdout, started.stderr, again.stdout, stopped.stdout, log()]) expect(text).to.not.contain(password);
    });

    it('a background worker whose keeper pm2 starts again asks for its credentials, and `after start -b` hands them over', async () => {
      const name = 'bg-again';
      const env = workerEnv(db);
      const logFile = path.join(db.config().log.dir, `${name}.log`);
      const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
      const readyLines = (): number => log().split('\n').filter((line) => line.includes(`worker ${name} ready`)).length;
      const keeperPid = async (): Promise<number | undefined> => {
        const listed = await runCli(['list'], { env });
        const match = new RegExp(`^${name}\\s+online\\s+(\\d+)`, 'm').exec(listed.stdout);
        return match ? Number(match[1]) : undefined;
      };
      expect((await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env })).code).to.equal(0);
      await waitFor(async () => readyLines() === 1, { timeoutMs: 30_000, what: 'the background worker to be ready' });
      const first = (await keeperPid())!;
      // SIGKILL: nothing in this process can be saved, and nothing was ever written down.
      process.kill(first, 'SIGKILL');
      await waitFor(async () => log().includes(`run 'after start ${name} -b' again to hand them to it`), { timeoutMs: 30_000, what: 'the new keeper to ask for its credentials' });
      const handed = await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env });
      expect(handed.code, handed.stderr).to.equal(0);
      expect(handed.stdout).to.contain('was waiting for its credentials');
      await waitFor(async () => readyLines() === 2, { timeoutMs: 30_000, what: 'the worker to start with its credentials' });
      expect((await runCli(['stop', name], { env, timeoutMs: 60_000 })).code).to.equal(0);
    });
  });

  describe('programs as another user (a root worker\'s default)', () => {
    before(function () {
      if (process.getuid?.() !== 0) this.skip();
    });
    const db = suite(null);
    before(() => aimProbe(db));

    it('the probe runs as nobody: it cannot read the worker\'s environment or its secrets folder, nor signal it', async () => {
      const { password } = urlWithPassword(db);
      const name = 'bg-other';
      const env = workerEnv(db);
      const logFile = path.join(db.config().log.dir, `${name}.log`);
      const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
      const readyLines = (): number => log().split('\n').filter((line) => line.includes(`worker ${name} ready`)).length;
      expect((await runCli(['start', name, '-b', '--jobs', FIXTURE_JOBS], { env })).code).to.equal(0);
      await waitFor(async () => readyLines() === 1, { timeoutMs: 30_000, what: 'the background worker to be ready' });

      const found = await probe(db, name, 3);
      expect(found.printed).to.match(/^uid=65534$/m);
      expect(found.printed).to.match(/environ: unreadable|Permission denied/);
      expect(found.printed).to.not.contain('AFTER_HOME=');
      expect(found.printed).to.not.contain(password);
      await waitFor(async () => fs.existsSync(`${found.loot}.log`) && fs.readFileSync(`${found.loot}.log`, 'utf8').includes('done'), { timeoutMs: 20_000, what: 'the loop to end' });
      expect(fs.readFileSync(`${found.loot}.log`, 'utf8'), 'the loop could not signal the worker').to.not.contain('signalled');
      expect(lootOf(found.loot)).to.equal('');
      // Still the first start: nothing ended the worker.
      const context: TaskDoc = await runTask(db, { worker: name, job: 'reports-context' }, 30_000);
      expect(JSON.stringify(context.result)).to.not.contain(password);
      expect(readyLines()).to.equal(1);
      expect((await runCli(['stop', name], { env, timeoutMs: 60_000 })).code).to.equal(0);
    });
  });
});

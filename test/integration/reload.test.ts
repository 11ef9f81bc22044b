/**
 * Reload and log rotation on real worker processes: SIGHUP reloads the jobs folder (a changed
 * job runs its new code, a broken folder is refused and the old jobs stay) without dropping
 * what the worker holds or runs; SIGUSR2 reopens the log file after it was moved; `after reload`
 * does both for a background worker. The signal goes to the pid a user would signal: the
 * credential launcher's when one runs the worker (it relays it), else the worker's own.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { iso, postTask, runCli, runTask, startWorker, useSuiteDb, waitFor, waitForStatus } from '../helpers/index';

/** A jobs folder of its own: `version` returns the text given, `slow_version` takes a while first. */
function jobsFolder(root: string): { dir: string; version(text: string): void; write(file: string, text: string): void } {
  const dir = fs.mkdtempSync(path.join(root, 'jobs-'));
  const write = (file: string, text: string): void => fs.writeFileSync(path.join(dir, file), text);
  const version = (text: string): void => {
    write('version.js', `module.exports = async () => (${JSON.stringify(text)});`);
    write('slow_version.mjs', `export default (task, ctx) => new Promise((resolve) => setTimeout(() => resolve(${JSON.stringify(text)}), 3000));`);
  };
  version('v1');
  return { dir, version, write };
}

describe('reload (SIGHUP) and log rotation (SIGUSR2)', function () {
  this.timeout(120_000);
  const db = useSuiteDb();

  const run = (worker: string, job: string): Promise<TaskDoc> => runTask(db, { worker, job }, 20_000);

  const logFile = (name: string): string => path.join(db.config().log.dir, `${name}.log`);
  const readLog = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

  it('SIGHUP: a changed job runs its new code from the next run on; the run in progress finishes with the old; a broken folder is refused and the old jobs stay', async () => {
    const jobs = jobsFolder(db.root);
    const { child: worker } = await startWorker(db, 'hup', { jobs: jobs.dir });
    expect((await run('hup', 'version')).result).to.equal('v1');

    const inProgress = await postTask(db, { worker: 'hup', date: iso(Date.now()), job: 'slow_version' });
    await waitForStatus(db, inProgress, 'running', 10_000);
    jobs.version('v2');
    process.kill(worker.pid, 'SIGHUP');
    await worker.waitForOutput(/SIGHUP: reloaded \d+ jobs from /, 10_000);
    expect((await waitForStatus(db, inProgress, 'done', 20_000)).result, 'the run in progress').to.equal('v1');
    expect((await run('hup', 'version')).result).to.equal('v2');
    expect((await run('hup', 'slow_version')).result, 'an ES module, reloaded too').to.equal('v2');

    jobs.write('broken.js', 'module.exports = () => {;');
    jobs.version('v3');
    process.kill(worker.pid, 'SIGHUP');
    const [refused] = await worker.waitForOutput(/SIGHUP: reload refused: .*broken\.js.*; the jobs loaded before stay/, 10_000);
    expect(refused).to.contain('cannot be loaded');
    expect(worker.running, 'the worker runs on').to.equal(true);
    expect((await run('hup', 'version')).result, 'the old jobs stay').to.equal('v2');

    fs.rmSync(path.join(jobs.dir, 'broken.js'));
    process.kill(worker.pid, 'SIGHUP');
    await waitFor(async () => (worker.stdout + worker.stderr).match(/SIGHUP: reloaded/g)?.length === 2, { timeoutMs: 10_000, what: 'the second reload' });
    expect((await run('hup', 'version')).result).to.equal('v3');

    worker.kill('SIGTERM');
    expect(await worker.exited, 'a clean stop after the reloads').to.equal(0);
  });

  it('SIGUSR2 after the log file was moved: new lines go to a new file of the same name', async () => {
    const { child: worker } = await startWorker(db, 'rotated', { jobs: jobsFolder(db.root).dir });
    const file = logFile('rotated');
    const moved = `${file}.1`;
    const first = await run('rotated', 'version');
    await waitFor(async () => readLog(file).includes(`task ${first._id} done`), { timeoutMs: 5_000, what: 'the first run in the log' });

    fs.renameSync(file, moved);
    process.kill(worker.pid, 'SIGUSR2');
    await worker.waitForOutput(/SIGUSR2: log files opened again/, 10_000);
    const second = await run('rotated', 'version');
    await waitFor(async () => readLog(file).includes(`task ${second._id} done`), { timeoutMs: 5_000, what: 'the second run in the new log file' });
    expect(readLog(moved)).to.contain(`task ${first._id} done`);
    expect(readLog(moved)).not.to.contain(`task ${second._id} done`);
    expect(readLog(file)).not.to.contain(`task ${first._id} done`);
  });

  it('after reload <name> for a background worker: SIGHUP through pm2, and --logs', async () => {
    const jobs = jobsFolder(db.root);
    const name = 'bg-reload';
    const file = logFile(name);
    const started = await runCli(['start', name, '-b', '--jobs', jobs.dir], { env: db.env });
    expect(started.code, started.stderr).to.equal(0);
    try {
      await waitFor(async () => readLog(file).includes(`worker ${name} ready`), { timeoutMs: 30_000, what: 'the background worker to be ready' });
      expect((await run(name, 'version')).result).to.equal('v1');

      jobs.version('v2');
      const reloaded = await runCli(['reload', name], { env: db.env });
      expect(reloaded.code, reloaded.stderr).to.equal(0);
      expect(reloaded.stdout).to.match(new RegExp(`^worker ${name} \\(pid \\d+\\) asked to reload its configuration and jobs \\(SIGHUP\\)`));
      await waitFor(async () => readLog(file).includes('SIGHUP: reloaded'), { timeoutMs: 10_000, what: 'the reload in the log' });
      expect((await run(name, 'version')).result).to.equal('v2');

      fs.renameSync(file, `${file}.1`);
      const logs = await runCli(['reload', name, '--logs'], { env: db.env });
      expect(logs.code, logs.stderr).to.equal(0);
      await waitFor(async () => readLog(file).includes('SIGUSR2: log files opened again'), { timeoutMs: 10_000, what: 'a new log file' });

      const unknown = await runCli(['reload', 'nobody'], { env: db.env });
      expect(unknown.code).to.equal(1);
      expect(unknown.stderr.trim()).to.match(/^after: no background worker named nobody \(running: bg-reload\)$/);
    } finally {
      const stopped = await runCli(['stop', name], { env: db.env, timeoutMs: 60_000 });
      expect(stopped.code, stopped.stderr).to.equal(0);
    }
  });
});

describe('reload through the credential launcher (a foreground worker with a password in AFTER_COUCHDB_URL)', function () {
  this.timeout(120_000);
  if (!fs.existsSync('/proc/self/environ')) return;
  const db = useSuiteDb();
  let url: string;

  before(() => {
    // A URL with a password: COUCHDB_URL's own, or the embedded server's generated admin.
    url = db.adminUrl;
    expect(new URL(url).password).to.not.equal('');
  });

  it('SIGHUP and SIGUSR2 sent to the launcher reach the worker; the launcher and the worker run on', async () => {
    const jobs = jobsFolder(db.root);
    const env = { ...db.env, AFTER_COUCHDB_URL: url, COUCHDB_URL: '' };
    const { child: worker, instance } = await startWorker(db, 'launched', { jobs: jobs.dir, env });
    expect(instance).not.to.contain(`:${worker.pid}:`);

    jobs.version('v2');
    process.kill(worker.pid, 'SIGHUP');
    await worker.waitForOutput(/SIGHUP: reloaded/, 10_000);
    process.kill(worker.pid, 'SIGUSR2');
    await worker.waitForOutput(/SIGUSR2: log files opened again/, 10_000);
    expect(worker.running).to.equal(true);
    const headers = { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${decodeURIComponent(new URL(url).username)}:${decodeURIComponent(new URL(url).password)}`).toString('base64')}` };
    const base = `${new URL(url).origin}/${db.dbName}`;
    const posted = (await (await fetch(base, { method: 'POST', headers, body: JSON.stringify({ worker: 'launched', date: iso(Date.now()), job: 'version' }) })).json()) as { id: string };
    const doc = await waitFor(async () => {
      const got = (await (await fetch(`${base}/${posted.id}`, { headers })).json()) as TaskDoc;
      return got.status === 'done' ? got : undefined;
    }, { timeoutMs: 20_000, what: 'the task to run' });
    expect(doc.result).to.equal('v2');
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
  });
});

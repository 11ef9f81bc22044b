/**
 * Commands as a user meets them: programs bound to job names in config.json, run by a worker
 * for tasks posted over HTTP; exec refused unless turned on; a program's whole process tree
 * (setsid descendants included) ended at a cancel, a timeout and a worker shutdown.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { FIXTURE_JOBS, iso, isAlive, postTask, runCli, sessionOf, startWorker, useSuiteDb, waitFor, waitForStatus } from '../helpers/index';

/** Descendants that left the process group are found through /proc (Linux). */
const HAS_PROC = fs.existsSync('/proc/self/environ');

describe('commands and exec', function () {
  this.timeout(120_000);
  const db = useSuiteDb({
    config: {
      worker: { grace_ms: 1000, program_timeout_ms: 1500 },
      commands: {
        'echo-data': { argv: ['/bin/cat'], stdin: 'data' },
        'echo-task': { argv: ['/bin/cat'], stdin: 'task' },
        fixed: { argv: ['/usr/bin/printf', '[%s]', 'fixed'] },
        greet: { argv: ['/usr/bin/printf', '[%s]', 'hello'], arguments: 'append' },
        // Starts a descendant in a session of its own, then waits; the pid file is named by the task.
        'leave-setsid': { argv: ['/bin/sh', '-c', 'setsid sleep 1003 & echo $! > "$1"; wait', 'leave-setsid'], arguments: 'append', timeout: '1h' },
        'leave-setsid-default-limit': { argv: ['/bin/sh', '-c', 'setsid sleep 1003 & echo $! > "$1"; wait', 'leave-setsid'], arguments: 'append' },
      },
    },
  });
  let pidDir: string;
  const escaped: number[] = [];

  before(() => {
    // Writable by the programs, which a root worker runs as nobody (worker.program_user).
    pidDir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-pids-'));
    fs.chmodSync(pidDir, 0o777);
  });
  after(() => {
    for (const pid of escaped) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(pidDir, { recursive: true, force: true });
  });
  /** How `after jobs` ends a command's line: a root worker runs programs as nobody. */
  const runsAs = process.getuid?.() === 0 ? ' as nobody' : '';

  /** A task due now. */
  const post = (task: Record<string, unknown>): Promise<string> => postTask(db, { date: iso(Date.now()), ...task });

  async function escapedPid(file: string): Promise<number> {
    const pid = await waitFor(
      async () => (fs.existsSync(file) && fs.readFileSync(file, 'utf8').endsWith('\n') ? Number(fs.readFileSync(file, 'utf8')) : undefined),
      { timeoutMs: 20_000, what: `the pid file ${file}` },
    );
    escaped.push(pid);
    // Once `setsid` has run, the sleep leads a session of its own: out of the program's group.
    await waitFor(async () => sessionOf(pid) === pid, { timeoutMs: 10_000, what: `process ${pid} to run in a session of its own` });
    expect(isAlive(pid)).to.equal(true);
    return pid;
  }

  const gone = (pid: number): Promise<boolean> =>
    waitFor(async () => !isAlive(pid), { timeoutMs: 10_000, what: `process ${pid} (setsid sleep 1003) to be gone` });

  it('after jobs lists the commands with their program', async () => {
    const listed = await runCli(['jobs', '--jobs', FIXTURE_JOBS], { env: db.env });
    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.match(new RegExp(`^\\s+echo-data\\s+command: /bin/cat < task data${runsAs}$`, 'm'));
    expect(listed.stdout).to.match(new RegExp(`^\\s+greet\\s+command: /usr/bin/printf .*\\+ task arguments${runsAs}$`, 'm'));
    expect(listed.stdout).to.not.match(/^\s+exec\s/m);
  });

  it('exec is an unknown job by default; a command runs with the task\'s data on stdin; arguments only where the binding allows', async () => {
    await startWorker(db, 'cmd');
    const marker = path.join(db.root, 'exec-ran');
    const exec = await post({ worker: 'cmd', job: { name: 'exec', arguments: ['/usr/bin/touch', marker] } });
    const data = { target: 's3://bucket/nightly', keep: 7, odd: '$(id); `id`' };
    const echoed = await post({ worker: 'cmd', job: 'echo-data', data });
    const wholeTask = await post({ worker: 'cmd', job: 'echo-task', data, mine: 'kept' });
    const refused = await post({ worker: 'cmd', job: { name: 'fixed', arguments: ['--extra'] } });
    const appended = await post({ worker: 'cmd', job: { name: 'greet', arguments: ['a b', '$HOME'] } });

    const execDoc = await waitForStatus(db, exec, 'error');
    expect(execDoc.error?.message).to.match(/^job\.name: unknown job "exec"/);
    expect(fs.existsSync(marker)).to.equal(false);

    const echoedDoc = await waitForStatus(db, echoed, 'done');
    expect(JSON.parse((echoedDoc.result as { stdout: string }).stdout)).to.deep.equal(data);
    const wholeDoc = await waitForStatus(db, wholeTask, 'done');
    const sent = JSON.parse((wholeDoc.result as { stdout: string }).stdout) as TaskDoc;
    expect(sent).to.include({ _id: wholeTask, worker: 'cmd', job: 'echo-task', mine: 'kept', status: 'running' });

    const refusedDoc = await waitForStatus(db, refused, 'error');
    expect(refusedDoc.error?.message).to.match(/^job\.arguments: /);
    expect(refusedDoc.error?.code).to.equal('E_TASK_INVALID');
    const appendedDoc = await waitForStatus(db, appended, 'done');
    expect(appendedDoc.result).to.deep.include({ code: 0, stdout: '[hello][a b][$HOME]' });
  });

  it('exec runs once turned on in config', async () => {
    const config = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as Record<string, unknown>;
    const withExec = path.join(db.root, 'config-exec.json');
    fs.writeFileSync(withExec, JSON.stringify({ ...config, builtins: { exec: true } }));
    await startWorker(db, 'exec-on', { env: { ...db.env, AFTER_CONFIG: withExec } });
    const id = await post({ worker: 'exec-on', job: { name: 'exec', arguments: ['/usr/bin/printf', '%s', 'opted in'] } });
    expect((await waitForStatus(db, id, 'done')).result).to.deep.include({ code: 0, stdout: 'opted in' });
  });

  it('a canceled run ends its program\'s whole tree, a setsid descendant included', async function () {
    if (!HAS_PROC) this.skip();
    await startWorker(db, 'cancel');
    const pidFile = path.join(pidDir, 'cancel.pid');
    const id = await post({ worker: 'cancel', job: { name: 'leave-setsid', arguments: [pidFile] } });
    const running = await waitForStatus(db, id, 'running');
    const pid = await escapedPid(pidFile);
    expect((await db.request('PUT', encodeURIComponent(id), { ...running, status: 'cancel' })).status).to.equal(201);
    await waitForStatus(db, id, 'canceled');
    await gone(pid);
  });

  it('the default limit (worker.program_timeout_ms) ends a run whose task sets none, and its setsid descendant', async function () {
    if (!HAS_PROC) this.skip();
    await startWorker(db, 'limit');
    const pidFile = path.join(pidDir, 'limit.pid');
    const id = await post({ worker: 'limit', job: { name: 'leave-setsid-default-limit', arguments: [pidFile] } });
    const pid = await escapedPid(pidFile);
    const failed = await waitForStatus(db, id, 'error', 20_000);
    expect(failed.error?.code).to.equal('E_TIMEOUT');
    expect(failed.error?.message).to.contain('1500 ms');
    await gone(pid);
  });

  it('a worker that stops past its grace period ends the trees of the runs it aborts', async function () {
    if (!HAS_PROC) this.skip();
    const { child: worker } = await startWorker(db, 'shutdown');
    const pidFile = path.join(pidDir, 'shutdown.pid');
    const id = await post({ worker: 'shutdown', job: { name: 'leave-setsid', arguments: [pidFile] } });
    await waitForStatus(db, id, 'running');
    const pid = await escapedPid(pidFile);
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
    await gone(pid);
  });

  it('a command named like a job file stops the worker at start, in one line naming the config and the field', async () => {
    const config = JSON.parse(fs.readFileSync(db.env.AFTER_CONFIG!, 'utf8')) as Record<string, unknown>;
    const clashing = path.join(db.root, 'config-clash.json');
    fs.writeFileSync(clashing, JSON.stringify({ ...config, commands: { succeeds: { argv: ['/bin/true'] } } }));
    const env = { ...db.env, AFTER_CONFIG: clashing };
    const refused = await runCli(['start', 'clash', '--jobs', FIXTURE_JOBS], { env });
    expect(refused.code).to.equal(1);
    expect(refused.stderr.trim().split('\n')).to.have.length(1);
    expect(refused.stderr).to.contain('config-clash.json').and.contain('commands.succeeds');
    const listed = await runCli(['jobs', '--jobs', FIXTURE_JOBS], { env });
    expect(listed.code).to.equal(1);
    expect(listed.stdout).to.match(/problem: .*commands\.succeeds/);
  });
});

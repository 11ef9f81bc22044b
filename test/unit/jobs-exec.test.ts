import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { delay } from '../../src/clock';
import { createExecJob, EXEC_KILL_GRACE_MS, EXEC_OUTPUT_LIMIT, type ExecResult } from '../../src/jobs/builtins/exec';
import { createTaskEmitter, runJob } from '../../src/jobs/run-job';
import { runAgainBuilders } from '../../src/jobs/run-again';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';
import { isAlive, sessionOf } from '../helpers/processes';

const execJob = createExecJob();

function execDoc(args: unknown[]): TaskDoc {
  return { _id: 'exec-task', worker: 'w', date: '2030-01-01', job: { name: 'exec', arguments: args } };
}

function runExec(args: unknown[], timeoutMs?: number): Promise<RunOutcome> {
  return runJob(execJob, execDoc(args), { signal: new AbortController().signal, log: silentLogger(), timeoutMs });
}

/** Calls the job directly, so a test can abort it and await its own end. */
function startExec(args: unknown[], signal: AbortSignal): Promise<ExecResult> {
  const doc = execDoc(args);
  return execJob(createTaskEmitter(doc, signal), { signal, log: silentLogger(), doc, runs: 1, ...runAgainBuilders });
}

function success(outcome: RunOutcome): ExecResult {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'success');
  return (outcome as { result: ExecResult }).result;
}

function failure(outcome: RunOutcome): { message: string; code?: string } {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'failure');
  return (outcome as { error: { message: string; code?: string } }).error;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

describe('exec built-in job', () => {
  let scratch: string;
  const leftPids: number[] = [];
  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'after-exec-'));
  });
  after(() => {
    for (const pid of leftPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('runs a program with its argument array and returns its output', async () => {
    const result = success(await runExec(['/usr/bin/env', 'printf', '%s', 'hi']));
    expect(result).to.deep.equal({ code: 0, stdout: 'hi', stderr: '' });
  });

  it('never interprets an argument with a shell', async () => {
    const hostile = '$(touch pwned); `id` | cat > pwned && echo "$HOME" *';
    const result = success(await runExec(['/usr/bin/printf', '%s', hostile]));
    expect(result.stdout).to.equal(hostile);
    expect(fs.existsSync('pwned')).to.equal(false);
  });

  it('gives the program PATH, HOME, LANG, AFTER_TASK_ID and its run marker, none of the worker secrets', async () => {
    const saved = process.env.AFTER_COUCHDB_URL;
    process.env.AFTER_COUCHDB_URL = 'http://admin:s3cret@127.0.0.1:5984';
    try {
      const result = success(await runExec(['/usr/bin/env']));
      const names = result.stdout.trim().split('\n').map((line) => line.split('=')[0]).sort();
      expect(result.stdout).to.include('AFTER_TASK_ID=exec-task\n');
      expect(result.stdout).to.not.include('s3cret');
      expect(names.filter((name) => !['PATH', 'HOME', 'LANG', 'AFTER_TASK_ID', 'AFTER_RUN_COOKIE'].includes(name!))).to.deep.equal([]);
    } finally {
      if (saved === undefined) delete process.env.AFTER_COUCHDB_URL;
      else process.env.AFTER_COUCHDB_URL = saved;
    }
  });

  it('closes stdin: a program reading it sees end of input at once', async () => {
    const result = success(await runExec(['/bin/sh', '-c', 'cat; echo eof']));
    expect(result.stdout).to.equal('eof\n');
  });

  it('fails on a non-zero exit, naming the program and its exit code', async () => {
    const error = failure(await runExec(['/bin/false']));
    expect(error.code).to.equal('E_EXEC_FAILED');
    expect(error.message).to.include('/bin/false').and.include('code 1');
  });

  it('quotes the end of stderr in a failure, on one line', async () => {
    const error = failure(await runExec(['/bin/sh', '-c', 'echo starting >&2; echo "disk full" >&2; exit 3']));
    expect(error.message).to.include('code 3').and.include('disk full');
    expect(error.message).to.not.include('\n');
  });

  it('fails with "command not found" for a program that does not exist', async () => {
    const error = failure(await runExec(['/no/such']));
    expect(error.code).to.equal('E_EXEC_NOT_FOUND');
    expect(error.message).to.include('/no/such');
  });

  const badArguments: Array<[string, unknown[]]> = [
    ['no arguments', []],
    ['a number as the program', [42]],
    ['an empty program', ['']],
    ['a non-string argument', ['/usr/bin/env', 'printf', { a: 1 }]],
    ['a NUL character', ['/usr/bin/printf', 'a\0b']],
  ];
  for (const [label, args] of badArguments) {
    it(`fails a task with ${label} as invalid, running nothing`, async () => {
      expect(failure(await runExec(args)).code).to.equal('E_TASK_INVALID');
    });
  }

  it('keeps 64 KiB of stdout (its start) and of stderr (its end), marked truncated', async () => {
    const stdoutResult = success(await runExec(['/bin/sh', '-c', 'yes o | head -c 200000; printf END']));
    expect(stdoutResult.stdout).to.have.length(EXEC_OUTPUT_LIMIT);
    expect(stdoutResult.stdout.startsWith('o\no\n')).to.equal(true);
    expect(stdoutResult.stdout_truncated).to.equal(true);
    expect(stdoutResult).to.not.have.property('stderr_truncated');

    const stderrResult = success(await runExec(['/bin/sh', '-c', 'yes e | head -c 200000 >&2; printf END >&2']));
    expect(stderrResult.stderr).to.have.length(EXEC_OUTPUT_LIMIT);
    expect(stderrResult.stderr.endsWith('e\nEND')).to.equal(true);
    expect(stderrResult.stderr_truncated).to.equal(true);
  });

  it('fails a run that passes its timeout quickly, killing the program', async () => {
    const pidFile = path.join(scratch, 'sleep.pid');
    const started = Date.now();
    const error = failure(await runExec(['/bin/sh', '-c', `echo $$ > ${pidFile}; exec /bin/sleep 10`], 200));
    expect(error.code).to.equal('E_TIMEOUT');
    expect(Date.now() - started).to.be.below(2000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    leftPids.push(pid);
    await waitFor(() => !isAlive(pid), 'the sleep to end', 1000);
  });

  it('on abort, stops the program and what it started (its process group)', async () => {
    const pidFile = path.join(scratch, 'grandchild.pid');
    const controller = new AbortController();
    const run = startExec(['/bin/sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], controller.signal);
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'), 'the pid file');
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    leftPids.push(grandchild);
    expect(isAlive(grandchild)).to.equal(true);

    const started = Date.now();
    controller.abort(new Error('canceled by the test'));
    let thrown: unknown;
    await run.catch((err: unknown) => (thrown = err));
    expect((thrown as Error).message).to.equal('canceled by the test');
    expect(Date.now() - started).to.be.below(EXEC_KILL_GRACE_MS);
    await waitFor(() => !isAlive(grandchild), 'the grandchild to end', 2000);
  });

  it('sends SIGKILL to a program that ignores SIGTERM, after the grace period', async () => {
    const readyFile = path.join(scratch, 'ignoring.ready');
    const controller = new AbortController();
    const run = startExec(
      ['/bin/sh', '-c', `trap '' TERM; echo $$ > ${readyFile}; while :; do sleep 0.05; done`],
      controller.signal,
    );
    await waitFor(() => fs.existsSync(readyFile) && fs.readFileSync(readyFile, 'utf8').endsWith('\n'), 'the ready file');
    const pid = Number(fs.readFileSync(readyFile, 'utf8'));
    leftPids.push(pid);

    const started = Date.now();
    controller.abort(new Error('stop'));
    await run.catch(() => undefined);
    const took = Date.now() - started;
    expect(took).to.be.at.least(EXEC_KILL_GRACE_MS - 100);
    expect(took).to.be.below(EXEC_KILL_GRACE_MS + 2000);
    await waitFor(() => !isAlive(pid), 'the program to end', 2000);
  });

  it('ends what the program left running when it exits, even a process that holds its output open', async () => {
    const started = Date.now();
    const result = success(await runExec(['/bin/sh', '-c', 'sleep 30 & echo $!']));
    const background = Number(result.stdout.trim());
    leftPids.push(background);
    expect(Date.now() - started).to.be.below(5000);
    await waitFor(() => !isAlive(background), 'the leftover to end', 5000);
  });

  describe('a descendant that left the process group (setsid)', function () {
    before(function () {
      if (!fs.existsSync('/proc/self/environ')) this.skip();
    });

    const setsidScript = (pidFile: string): string[] => ['/bin/sh', '-c', `setsid sleep 1003 & echo $! > ${pidFile}; wait`];

    it('is gone when the run times out', async () => {
      const pidFile = path.join(scratch, 'setsid-timeout.pid');
      const run = runExec(setsidScript(pidFile), 1000);
      await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'), 'the pid file');
      const escaped = Number(fs.readFileSync(pidFile, 'utf8'));
      leftPids.push(escaped);
      await waitFor(() => sessionOf(escaped) === escaped, 'it to run in a session of its own');
      expect(failure(await run).code).to.equal('E_TIMEOUT');
      await waitFor(() => !isAlive(escaped), 'the setsid sleep to end', EXEC_KILL_GRACE_MS + 3000);
    });

    it('is gone when the run is canceled', async () => {
      const pidFile = path.join(scratch, 'setsid-cancel.pid');
      const controller = new AbortController();
      const run = startExec(setsidScript(pidFile), controller.signal);
      await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'), 'the pid file');
      const escaped = Number(fs.readFileSync(pidFile, 'utf8'));
      leftPids.push(escaped);
      await waitFor(() => sessionOf(escaped) === escaped, 'it to run in a session of its own');
      controller.abort(new Error('canceled'));
      await run.catch(() => undefined);
      await waitFor(() => !isAlive(escaped), 'the setsid sleep to end', EXEC_KILL_GRACE_MS + 3000);
    });
  });

  describe('time limit', () => {
    it('ends a run whose task sets no timeout at the default limit', async () => {
      const limited = createExecJob({ defaultTimeoutMs: 300 });
      const outcome = await runJob(limited, execDoc(['/bin/sleep', '10']), { signal: new AbortController().signal, log: silentLogger() });
      expect(failure(outcome).code).to.equal('E_TIMEOUT');
    });

    it("lets the task's own timeout win over the default", async () => {
      const limited = createExecJob({ defaultTimeoutMs: 100 });
      const doc = { ...execDoc(['/bin/sh', '-c', 'sleep 0.6; printf finished']), timeout: 10_000 };
      const outcome = await runJob(limited, doc, { signal: new AbortController().signal, log: silentLogger(), timeoutMs: 10_000 });
      expect(success(outcome).stdout).to.equal('finished');
    });
  });
});

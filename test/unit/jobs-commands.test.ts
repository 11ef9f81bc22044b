import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandBinding } from '../../src/config/types';
import { commandJob, commandProblems, describeCommand } from '../../src/jobs/commands';
import { runJob } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';

function binding(overrides: Partial<CommandBinding> & Pick<CommandBinding, 'argv'>): CommandBinding {
  return { arguments: 'none', stdin: 'none', timeout_ms: null, env: {}, cwd: null, user: null, ...overrides };
}

function task(fields: Partial<TaskDoc> = {}): TaskDoc {
  return { _id: 'cmd-task', worker: 'w', date: '2030-01-01', job: 'backup', ...fields };
}

function runCommand(bound: CommandBinding, doc: TaskDoc, options: { defaultTimeoutMs?: number; timeoutMs?: number } = {}): Promise<RunOutcome> {
  const fn = commandJob('backup', bound, options.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.defaultTimeoutMs });
  return runJob(fn, doc, { signal: new AbortController().signal, log: silentLogger(), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
}

function success(outcome: RunOutcome): { code: number; stdout: string; stderr: string } {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'success');
  return (outcome as { result: { code: number; stdout: string; stderr: string } }).result;
}

function failure(outcome: RunOutcome): { message: string; code?: string } {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'failure');
  return (outcome as { error: { message: string; code?: string } }).error;
}

describe('commands (programs bound to job names in config)', () => {
  let scratch: string;
  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'after-commands-'));
  });
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  describe('stdin', () => {
    it('"data" sends the task\'s data as JSON, then closes stdin', async () => {
      const data = { target: 's3://bucket/x', keep: 7, tags: ['a', 'b'], quote: '"$(id)"' };
      const result = success(await runCommand(binding({ argv: ['/bin/cat'], stdin: 'data' }), task({ data })));
      expect(JSON.parse(result.stdout)).to.deep.equal(data);
      expect(result.stdout.endsWith('\n')).to.equal(true);
    });

    it('"data" sends null for a task without data', async () => {
      const result = success(await runCommand(binding({ argv: ['/bin/cat'], stdin: 'data' }), task()));
      expect(result.stdout).to.equal('null\n');
    });

    it('"task" sends the whole task document', async () => {
      const doc = task({ data: { n: 1 }, mine: 'kept' });
      const sent = JSON.parse(success(await runCommand(binding({ argv: ['/bin/cat'], stdin: 'task' }), doc)).stdout) as TaskDoc;
      expect(sent).to.include({ _id: 'cmd-task', worker: 'w', job: 'backup', mine: 'kept' });
      expect(sent.data).to.deep.equal({ n: 1 });
    });

    it('none by default: the program sees end of input at once', async () => {
      const result = success(await runCommand(binding({ argv: ['/bin/sh', '-c', 'cat; echo eof'] }), task({ data: { x: 1 } })));
      expect(result.stdout).to.equal('eof\n');
    });

    it('a program that does not read its stdin still succeeds', async () => {
      const big = { blob: 'x'.repeat(512 * 1024) };
      const result = success(await runCommand(binding({ argv: ['/usr/bin/printf', 'ignored'], stdin: 'data' }), task({ data: big })));
      expect(result.stdout).to.equal('ignored');
    });
  });

  describe('arguments from the task', () => {
    it('are refused by a binding that does not allow them: error naming job.arguments, nothing runs', async () => {
      const marker = path.join(scratch, 'ran');
      const error = failure(await runCommand(binding({ argv: ['/usr/bin/touch', marker] }), task({ job: { name: 'backup', arguments: ['--delete-all'] } })));
      expect(error.code).to.equal('E_TASK_INVALID');
      expect(error.message).to.match(/^job\.arguments: /).and.include('"arguments": "append"');
      expect(fs.existsSync(marker)).to.equal(false);
    });

    it('an empty job.arguments is no argument', async () => {
      const result = success(await runCommand(binding({ argv: ['/usr/bin/printf', 'fixed'] }), task({ job: { name: 'backup', arguments: [] } })));
      expect(result.stdout).to.equal('fixed');
    });

    it('are appended after the bound argv with "arguments": "append", each one argv entry', async () => {
      const bound = binding({ argv: ['/usr/bin/printf', '[%s]'], arguments: 'append' });
      const result = success(await runCommand(bound, task({ job: { name: 'backup', arguments: ['a b', '$(id)', ';rm -rf /'] } })));
      expect(result.stdout).to.equal('[a b][$(id)][;rm -rf /]');
    });

    it('must be strings without NUL even when allowed', async () => {
      const bound = binding({ argv: ['/usr/bin/printf', '%s'], arguments: 'append' });
      expect(failure(await runCommand(bound, task({ job: { name: 'backup', arguments: [42] } }))).code).to.equal('E_TASK_INVALID');
      expect(failure(await runCommand(bound, task({ job: { name: 'backup', arguments: ['a\0b'] } }))).code).to.equal('E_TASK_INVALID');
    });

    it('never come from data: the short form\'s data is what stdin "data" sends', async () => {
      const result = success(await runCommand(binding({ argv: ['/usr/bin/printf', 'fixed'] }), task({ job: 'backup', data: ['--delete-all'] })));
      expect(result.stdout).to.equal('fixed');
    });
  });

  it('runs with the minimal environment plus the binding\'s env, in its cwd', async () => {
    const bound = binding({ argv: ['/bin/sh', '-c', 'echo "$GREETING"; pwd; env | cut -d= -f1 | sort | tr "\\n" " "'], env: { GREETING: 'hello world' }, cwd: scratch });
    const result = success(await runCommand(bound, task()));
    const [greeting, cwd, names] = result.stdout.split('\n');
    expect(greeting).to.equal('hello world');
    expect(fs.realpathSync(cwd!)).to.equal(fs.realpathSync(scratch));
    const allowed = ['PATH', 'HOME', 'LANG', 'AFTER_TASK_ID', 'AFTER_RUN_COOKIE', 'GREETING', 'PWD', 'SHLVL', '_', 'OLDPWD'];
    expect(names!.trim().split(' ').filter((name) => !allowed.includes(name))).to.deep.equal([]);
  });

  it('fails like exec on a non-zero exit, naming the command and quoting stderr', async () => {
    const error = failure(await runCommand(binding({ argv: ['/bin/sh', '-c', 'echo "disk full" >&2; exit 3'] }), task()));
    expect(error.code).to.equal('E_EXEC_FAILED');
    expect(error.message).to.include('command "backup"').and.include('code 3').and.include('disk full');
  });

  describe('time limit', () => {
    it("the binding's timeout ends a run whose task sets none", async () => {
      const error = failure(await runCommand(binding({ argv: ['/bin/sleep', '10'], timeout_ms: 300 }), task(), { defaultTimeoutMs: 60_000 }));
      expect(error.code).to.equal('E_TIMEOUT');
      expect(error.message).to.include('300 ms');
    });

    it('without one in the binding, the default (worker.program_timeout_ms) applies', async () => {
      const error = failure(await runCommand(binding({ argv: ['/bin/sleep', '10'] }), task(), { defaultTimeoutMs: 250 }));
      expect(error.code).to.equal('E_TIMEOUT');
      expect(error.message).to.include('250 ms');
    });

    it("the task's own timeout wins over both", async () => {
      const bound = binding({ argv: ['/bin/sh', '-c', 'sleep 0.6; printf finished'], timeout_ms: 100 });
      const result = success(await runCommand(bound, task({ timeout: 10_000 }), { defaultTimeoutMs: 100, timeoutMs: 10_000 }));
      expect(result.stdout).to.equal('finished');
    });
  });

  describe('checked when the jobs are loaded', () => {
    it('a program that does not exist, is not executable, or is not in PATH; a missing cwd', () => {
      const notExecutable = path.join(scratch, 'plain.txt');
      fs.writeFileSync(notExecutable, 'not a program');
      const cases: Array<{ bound: CommandBinding; field: string }> = [
        { bound: binding({ argv: ['/no/such/program'] }), field: 'commands.backup.argv[0]' },
        { bound: binding({ argv: [notExecutable] }), field: 'commands.backup.argv[0]' },
        { bound: binding({ argv: [scratch] }), field: 'commands.backup.argv[0]' },
        { bound: binding({ argv: ['no-such-program-anywhere'] }), field: 'commands.backup.argv[0]' },
        { bound: binding({ argv: ['/bin/true'], cwd: path.join(scratch, 'missing') }), field: 'commands.backup.cwd' },
      ];
      for (const c of cases) {
        const problems = commandProblems('backup', c.bound);
        expect(problems, JSON.stringify(c.bound)).to.have.length(1);
        expect(problems[0]!.startsWith(`${c.field}: `), problems[0]).to.equal(true);
      }
    });

    it('a program found in PATH (the binding may set its own PATH) is fine', () => {
      expect(commandProblems('backup', binding({ argv: ['sh'] }))).to.deep.equal([]);
      fs.mkdirSync(path.join(scratch, 'bin'), { recursive: true });
      const own = path.join(scratch, 'bin', 'my-tool');
      fs.writeFileSync(own, '#!/bin/sh\necho mine\n', { mode: 0o755 });
      expect(commandProblems('backup', binding({ argv: ['my-tool'] }))).to.have.length(1);
      expect(commandProblems('backup', binding({ argv: ['my-tool'], env: { PATH: path.join(scratch, 'bin') } }))).to.deep.equal([]);
    });
  });

  it('describes itself for after jobs', () => {
    expect(describeCommand(binding({ argv: ['/usr/local/bin/backup', '--full'], stdin: 'data' }))).to.equal('command: /usr/local/bin/backup --full < task data');
    expect(describeCommand(binding({ argv: ['/bin/echo', 'two words'], arguments: 'append' }))).to.equal('command: /bin/echo "two words" + task arguments');
  });
});

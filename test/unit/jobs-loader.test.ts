import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandBinding } from '../../src/config/types';
import { webhookJob } from '../../src/jobs/builtins/webhook';
import {
  assertNoJobProblems,
  describeJobs,
  loadJobs,
  JobsInvalidError,
  type JobRegistry,
} from '../../src/jobs/loader';
import { runJob, type JobFunction } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome } from '../../src/types';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const GOOD_JOBS = path.join(FIXTURES, 'jobs');
const BAD_JOBS = path.join(FIXTURES, 'bad-jobs');

function run(fn: JobFunction | undefined, args: unknown[] = []): Promise<RunOutcome> {
  expect(fn, 'job resolves').to.be.a('function');
  const doc = { _id: 'task-1', worker: 'w', date: '2030-01-01', job: { name: 'x', arguments: args } };
  return runJob(fn!, doc, { signal: new AbortController().signal, log: silentLogger() });
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

describe('jobs loader', () => {
  describe('a folder of well-formed jobs', () => {
    let registry: JobRegistry;
    before(async () => {
      registry = await loadJobs(GOOD_JOBS);
    });

    it('loads every form: CommonJS, ES module, the index file, and the built-ins', () => {
      expect(registry.problems).to.deep.equal([]);
      expect(registry.names()).to.include.members([
        'succeeds',
        'throws',
        'rejects',
        'emitter-done',
        'emitter-error',
        'hangs',
        'slow',
        'records',
        'esm-job',
        'fromIndexA',
        'fromIndexB',
        'webhook',
      ]);
      // the index file is a source of jobs, not a job; its non-function export is no job
      expect(registry.names()).to.not.include.members(['index', 'prefix']);
      expect(registry.dir).to.equal(GOOD_JOBS);
    });

    it('runs a CommonJS job, an ES module job (top-level await) and index exports', async () => {
      expect(await run(registry.resolve('succeeds'), [1, 'a'])).to.deep.equal({
        kind: 'success',
        result: { ok: true, args: [1, 'a'] },
      });
      const esm = await run(registry.resolve('esm-job'));
      expect(esm).to.have.property('kind', 'success');
      expect((esm as { result: Record<string, unknown> }).result).to.include({ esm: true, id: 'task-1' });
      expect(await run(registry.resolve('fromIndexA'))).to.deep.equal({
        kind: 'success',
        result: { job: 'fromIndexA', id: 'task-1' },
      });
      // an index export is called with its exports object as `this`
      expect(await run(registry.resolve('fromIndexB'))).to.deep.equal({
        kind: 'success',
        result: { job: 'fromIndexB', prefix: 'from index' },
      });
    });

    it('registers webhook, and exec only when it is turned on', async () => {
      expect(registry.resolve('webhook')).to.equal(webhookJob);
      expect(registry.resolve('exec'), 'exec is off by default').to.equal(undefined);
      const withExec = await loadJobs(GOOD_JOBS, { builtins: { exec: true } });
      expect(await run(withExec.resolve('exec'), ['/usr/bin/printf', '%s', 'ran'])).to.deep.include({ kind: 'success' });
    });

    const notJobNames: Array<[string, unknown]> = [
      ['a parent path', '../x'],
      ['a parent path to a real job', '../jobs/succeeds'],
      ['an absolute path', '/etc/passwd'],
      ['an absolute path to a real job', path.join(GOOD_JOBS, 'succeeds.js')],
      ['a nested path', 'a/b'],
      ['a trailing slash', 'succeeds/'],
      ['a backslash path', '..\\succeeds'],
      ['a NUL byte', 'succeeds\0'],
      ['a file name with extension', 'succeeds.js'],
      ['the index file', 'index'],
      ['a non-function index export', 'prefix'],
      ['__proto__', '__proto__'],
      ['constructor', 'constructor'],
      ['toString', 'toString'],
      ['hasOwnProperty', 'hasOwnProperty'],
      ['the empty string', ''],
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
      ['an object', {}],
      ['an array holding a job name', ['succeeds']],
      ['an object whose toString is a job name', { toString: () => 'succeeds' }],
    ];
    for (const [label, name] of notJobNames) {
      it(`resolves ${label} to no job`, () => {
        expect(registry.resolve(name)).to.equal(undefined);
      });
    }

    it('lists each job with its file or "built-in" for after jobs', () => {
      const lines = describeJobs(registry);
      expect(lines.find((line) => line.startsWith('webhook '))).to.match(/built-in$/);
      expect(lines.find((line) => line.startsWith('succeeds '))).to.match(/succeeds\.js$/);
      expect(lines.find((line) => line.startsWith('fromIndexA '))).to.match(/index\.js$/);
      expect(lines.some((line) => line.startsWith('problem:'))).to.equal(false);
    });

    it('leaves out a built-in that is disabled', async () => {
      const without = await loadJobs(GOOD_JOBS, { builtins: { exec: false } });
      expect(without.resolve('exec')).to.equal(undefined);
      expect(without.resolve('webhook')).to.equal(webhookJob);
      assertNoJobProblems(without);
    });
  });

  describe('a folder with problems', () => {
    let copy: string;
    let outside: string;
    let registry: JobRegistry;

    before(async () => {
      copy = tempDir('after-bad-jobs-');
      outside = tempDir('after-outside-');
      fs.cpSync(BAD_JOBS, copy, { recursive: true });
      // A module outside the folder that leaves a mark if it is ever loaded.
      const marker = path.join(outside, 'loaded');
      fs.writeFileSync(
        path.join(outside, 'evil.js'),
        `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'loaded');\nmodule.exports = async () => 'evil';\n`,
      );
      fs.symlinkSync(path.join(outside, 'evil.js'), path.join(copy, 'evil.js'));
      // A link to a file inside the folder stays inside: it is a job.
      fs.symlinkSync(path.join(copy, 'good.js'), path.join(copy, 'alias.js'));
      fs.symlinkSync(path.join(outside, 'gone.js'), path.join(copy, 'dangling.js'));
      // exec on: bad-jobs/exec.js clashes with it
      registry = await loadJobs(copy, { builtins: { exec: true } });
    });

    after(() => {
      fs.rmSync(copy, { recursive: true, force: true });
      fs.rmSync(outside, { recursive: true, force: true });
    });

    it('reports every problem at once, each naming its file', () => {
      const files = registry.problems.map((problem) => path.basename(problem.file)).sort();
      expect(files).to.deep.equal(
        [
          'dangling.js',
          'evil.js',
          'exec.js',
          'exports-object.js',
          'exports-string.js',
          'index.js',
          'syntax-error.js',
          'throws-on-load.js',
          'twice.js',
        ].sort(),
      );
      // the message alone names the file, so any one-line report of it does
      for (const problem of registry.problems) expect(problem.message.startsWith(`${problem.file}: `)).to.equal(true);
    });

    it('still loads the good jobs beside the broken ones', async () => {
      expect(registry.names()).to.include.members(['good', 'alias', 'fine', 'twice']);
      expect(await run(registry.resolve('good'))).to.deep.equal({ kind: 'success', result: { good: true } });
      expect(await run(registry.resolve('alias'))).to.deep.equal({ kind: 'success', result: { good: true } });
      expect(await run(registry.resolve('fine'))).to.deep.equal({ kind: 'success', result: { fine: true } });
    });

    it('keeps the first of two definitions: the built-in over a file, a file over an index export', async () => {
      expect(await run(registry.resolve('exec'), ['/usr/bin/printf', 'built-in'])).to.deep.equal({
        kind: 'success',
        result: { code: 0, stdout: 'built-in', stderr: '' },
      });
      expect(await run(registry.resolve('good'))).to.deep.equal({ kind: 'success', result: { good: true } });
      const twice = await run(registry.resolve('twice'));
      expect(twice).to.deep.equal({ kind: 'success', result: { from: 'twice.cjs' } });
    });

    it('never loads a module a symlink points to outside the folder', () => {
      expect(registry.resolve('evil')).to.equal(undefined);
      expect(fs.existsSync(path.join(outside, 'loaded'))).to.equal(false);
    });

    it('leaves out every broken module', () => {
      for (const name of ['throws-on-load', 'exports-string', 'exports-object', 'syntax-error', 'dangling', 'evil']) {
        expect(registry.resolve(name), name).to.equal(undefined);
      }
    });

    it('fails a start with one error listing all problems', () => {
      let thrown: unknown;
      try {
        assertNoJobProblems(registry);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.be.instanceOf(JobsInvalidError);
      expect((thrown as JobsInvalidError).code).to.equal('E_JOBS_INVALID');
      expect((thrown as JobsInvalidError).problems).to.have.length(registry.problems.length);
      expect(describeJobs(registry).filter((line) => line.startsWith('problem:'))).to.have.length(
        registry.problems.length,
      );
    });
  });

  describe('commands from the config', () => {
    const bound = (argv: string[]): CommandBinding => ({ argv, arguments: 'none', stdin: 'none', timeout_ms: null, env: {}, cwd: null, user: null });

    it('are jobs like the others, listed by after jobs with their program', async () => {
      const registry = await loadJobs(GOOD_JOBS, { commands: { greet: bound(['/usr/bin/printf', 'hello']) }, configFile: '/etc/after/config.json' });
      expect(registry.problems).to.deep.equal([]);
      expect(registry.names()).to.include('greet');
      expect(await run(registry.resolve('greet'))).to.deep.equal({ kind: 'success', result: { code: 0, stdout: 'hello', stderr: '' } });
      // A root worker runs programs as nobody (program-user.ts), and says so.
      const runsAs = process.getuid?.() === 0 ? ' as nobody' : '';
      expect(describeJobs(registry).find((line) => line.startsWith('greet '))).to.match(new RegExp(`command: /usr/bin/printf hello${runsAs}$`));
    });

    it('report a name taken by a built-in, a job file or an index export, and a missing program, all at once', async () => {
      const registry = await loadJobs(GOOD_JOBS, {
        builtins: { exec: true },
        commands: {
          exec: bound(['/bin/true']),
          succeeds: bound(['/bin/true']),
          fromIndexA: bound(['/bin/true']),
          missing: bound(['/no/such/program']),
          fine: bound(['/bin/true']),
        },
        configFile: path.join(os.tmpdir(), 'after-config.json'),
      });
      const reasons = registry.problems.map((problem) => problem.reason);
      expect(reasons).to.have.length(4);
      for (const name of ['exec', 'succeeds', 'fromIndexA', 'missing']) {
        expect(reasons.some((reason) => reason.startsWith(`commands.${name}`)), name).to.equal(true);
      }
      for (const problem of registry.problems) expect(problem.file).to.equal(path.join(os.tmpdir(), 'after-config.json'));
      // the jobs keep their names; the broken command is no job
      expect(await run(registry.resolve('succeeds'), [1])).to.deep.include({ kind: 'success' });
      expect(registry.resolve('missing')).to.equal(undefined);
      expect(registry.resolve('fine')).to.be.a('function');
      expect(() => assertNoJobProblems(registry)).to.throw(JobsInvalidError);
    });

    it('may take the name of a built-in that is off', async () => {
      const registry = await loadJobs(GOOD_JOBS, { commands: { exec: bound(['/usr/bin/printf', 'mine']) } });
      expect(registry.problems).to.deep.equal([]);
      expect(await run(registry.resolve('exec'))).to.deep.equal({ kind: 'success', result: { code: 0, stdout: 'mine', stderr: '' } });
    });
  });

  it('reads index.js when there are several index files, and reports the others', async () => {
    const dir = tempDir('after-two-index-');
    try {
      fs.writeFileSync(path.join(dir, 'index.js'), 'exports.fromJs = async () => "js";\n');
      fs.writeFileSync(path.join(dir, 'index.cjs'), 'exports.fromCjs = async () => "cjs";\n');
      const registry = await loadJobs(dir);
      expect(registry.resolve('fromJs')).to.be.a('function');
      expect(registry.resolve('fromCjs')).to.equal(undefined);
      expect(registry.problems.map((problem) => path.basename(problem.file))).to.deep.equal(['index.cjs']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows a jobs folder that is itself a symlink', async () => {
    const parent = tempDir('after-linked-jobs-');
    try {
      const link = path.join(parent, 'jobs');
      fs.symlinkSync(GOOD_JOBS, link);
      const registry = await loadJobs(link);
      expect(registry.problems).to.deep.equal([]);
      expect(registry.names()).to.include('succeeds');
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  it('rejects a jobs folder that does not exist with a clear error', async () => {
    const missing = path.join(os.tmpdir(), `after-no-such-jobs-${process.pid}-${Date.now()}`);
    let thrown: unknown;
    try {
      await loadJobs(missing);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.have.property('code', 'E_JOBS_DIR');
    expect((thrown as Error).message).to.include(missing);
  });

  it('rejects a jobs "folder" that is a file', async () => {
    let thrown: unknown;
    try {
      await loadJobs(path.join(GOOD_JOBS, 'succeeds.js'));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.have.property('code', 'E_JOBS_DIR');
  });
});

describe('jobs loader: a reload (SIGHUP) reads the files again', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('after-reload-jobs-');
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (file: string, text: string): void => fs.writeFileSync(path.join(dir, file), text);
  const resultOf = async (registry: JobRegistry, name: string): Promise<unknown> => ((await run(registry.resolve(name))) as { result: unknown }).result;

  it('CommonJS jobs, the helpers they require, ES modules (.mjs and .js of type module) and index exports: all the new code', async () => {
    fs.mkdirSync(path.join(dir, 'lib'));
    write('lib/version.js', "module.exports = 'helper v1';");
    write('cjs.js', "const helper = require('./lib/version'); module.exports = () => ['cjs v1', helper];");
    write('esm.mjs', "export default () => 'mjs v1';");
    write('index.js', "exports.fromIndex = () => 'index v1';");
    // A .js ES module: a jobs folder whose package.json says "type": "module" (require() loads
    // it from the ES module cache, which a reload must not use).
    const moduleDir = tempDir('after-reload-module-');
    try {
      fs.writeFileSync(path.join(moduleDir, 'package.json'), '{"type": "module"}');
      fs.writeFileSync(path.join(moduleDir, 'modern.js'), "export default () => 'js module v1';");
      const first = await loadJobs(dir);
      const firstModule = await loadJobs(moduleDir);
      expect(first.problems).to.deep.equal([]);
      expect(await resultOf(first, 'cjs')).to.deep.equal(['cjs v1', 'helper v1']);
      expect(await resultOf(first, 'esm')).to.equal('mjs v1');
      expect(await resultOf(first, 'fromIndex')).to.equal('index v1');
      expect(await resultOf(firstModule, 'modern')).to.equal('js module v1');

      write('lib/version.js', "module.exports = 'helper v2';");
      write('cjs.js', "const helper = require('./lib/version'); module.exports = () => ['cjs v2', helper];");
      write('esm.mjs', "export default () => 'mjs v2';");
      write('index.js', "exports.fromIndex = () => 'index v2';");
      fs.writeFileSync(path.join(moduleDir, 'modern.js'), "export default () => 'js module v2';");

      const notReloaded = await loadJobs(dir);
      expect(await resultOf(notReloaded, 'cjs'), 'without reload, Node\'s cache answers').to.deep.equal(['cjs v1', 'helper v1']);

      const reloaded = await loadJobs(dir, { reload: true });
      const reloadedModule = await loadJobs(moduleDir, { reload: true });
      expect(reloaded.problems).to.deep.equal([]);
      expect(await resultOf(reloaded, 'cjs')).to.deep.equal(['cjs v2', 'helper v2']);
      expect(await resultOf(reloaded, 'esm')).to.equal('mjs v2');
      expect(await resultOf(reloaded, 'fromIndex')).to.equal('index v2');
      expect(await resultOf(reloadedModule, 'modern')).to.equal('js module v2');
      expect(await resultOf(first, 'cjs'), 'the registry loaded before keeps its code').to.deep.equal(['cjs v1', 'helper v1']);
    } finally {
      fs.rmSync(moduleDir, { recursive: true, force: true });
    }
  });

  it('a broken job after the change is a problem naming its file, like at start', async () => {
    write('good.js', "module.exports = () => 'good';");
    write('breaks.js', "module.exports = () => 'fine for now';");
    expect((await loadJobs(dir)).problems).to.deep.equal([]);
    write('breaks.js', 'module.exports = () => {;');
    const reloaded = await loadJobs(dir, { reload: true });
    expect(reloaded.problems.map((problem) => problem.file)).to.deep.equal([path.join(dir, 'breaks.js')]);
    expect(() => assertNoJobProblems(reloaded)).to.throw(JobsInvalidError);
  });
});

/**
 * The library API as a Node program uses it: the README's example (docs/dashboard.md) run as
 * an ES module that imports 'after' by its package name, and the CommonJS entry beside it.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, registryFromFunctions, startWorker } from '../../src/api';
import { AfterError, TaskInvalidError } from '../../src/errors';
import type { TaskDoc } from '../../src/types';
import { REPO_ROOT, useSuiteDb, waitFor } from '../helpers/index';

const EXAMPLE_DOC = path.join(REPO_ROOT, 'README.md');

/** The ```js block after the `api-example` marker. */
function readmeExample(): string {
  const text = fs.readFileSync(EXAMPLE_DOC, 'utf8');
  const match = /<!-- api-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(text);
  if (!match) throw new Error(`no api-example block in ${EXAMPLE_DOC}`);
  return match[1]!;
}

/** Run a module file with node; inside the repository, so `'after'` resolves to this package. */
function runNode(file: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('library API', function () {
  this.timeout(60_000);
  const db = useSuiteDb();
  const scratch: string[] = [];
  after(() => {
    for (const file of scratch) fs.rmSync(file, { force: true });
  });

  function scratchFile(ext: string, text: string): string {
    const file = path.join(REPO_ROOT, 'dist', 'test', `api-scratch-${randomBytes(4).toString('hex')}.${ext}`);
    fs.writeFileSync(file, text);
    scratch.push(file);
    return file;
  }

  it('runs the README example as an ES module importing "after"', async () => {
    const file = scratchFile('mjs', readmeExample());
    const result = await runNode(file, db.env);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.contain("done { sent: 'ada@example.com' }");

    const ada = (await db.request<TaskDoc>('GET', 'welcome-ada')).body;
    expect(ada.status).to.equal('done');
    expect(ada.result).to.deep.equal({ sent: 'ada@example.com' });
    const listed = result.stdout.split('\n').filter((line) => line.includes('2031-01-01T09:00:00Z'));
    expect(listed, result.stdout).to.have.length(1);
    // cancel, or canceled once the worker (still running then) has acknowledged it.
    expect(listed[0]).to.match(/ cancel(ed)? /);
  });

  it('is the same API from CommonJS', async () => {
    const file = scratchFile('cjs', "const after = require('after');\nconsole.log(typeof after.connect, typeof after.startWorker, typeof after.AfterError);\n");
    const result = await runNode(file, db.env);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout.trim()).to.equal('function function function');
  });

  it('validates a task before creating it, as `after task add` does', async () => {
    const client = connect({ config: db.config() });
    try {
      const err = await client.create({ worker: 'w', date: 'tomorrow-ish', job: 'succeeds' }).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(TaskInvalidError);
      expect((err as TaskInvalidError).field).to.equal('date');
      const created = await client.create({ _id: 'api-once', worker: 'w', date: new Date('2040-01-01T00:00:00Z'), job: 'succeeds' });
      expect(created.date).to.equal('2040-01-01T00:00:00.000Z');
      const again = await client.create({ _id: 'api-once', worker: 'w', date: '2040-01-01', job: 'succeeds' }).then(() => null, (e: unknown) => e);
      expect((again as AfterError).code).to.equal('E_TASK_EXISTS');
      expect((await client.list({ worker: 'w', from: '2039-12-31', to: '2040-01-02' })).map((t) => t._id)).to.deep.equal(['api-once']);
    } finally {
      client.close();
    }
  });

  it('refuses the ids "." and ".." (a URL resolves them to the database or the server) on every call, as the dashboard does', async () => {
    const client = connect({ config: db.config() });
    try {
      for (const id of ['.', '..']) {
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['get', () => client.get(id)],
          ['cancel', () => client.cancel(id)],
          ['reschedule', () => client.reschedule(id, '2040-01-01')],
          ['delete', () => client.delete(id)],
          ['create', () => client.create({ _id: id, worker: 'w', date: '2040-01-01', job: 'succeeds' })],
        ];
        for (const [name, call] of calls) {
          const err = await call().then(() => null, (e: unknown) => e);
          expect(err, `${name}(${JSON.stringify(id)})`).to.be.instanceOf(AfterError);
          expect((err as AfterError).code, `${name}(${JSON.stringify(id)}): ${(err as Error).message}`).to.be.oneOf(['E_RESERVED_ID', 'E_TASK_INVALID']);
        }
      }
      // The database and its tasks are untouched.
      expect((await db.request('GET', '')).status).to.equal(200);
    } finally {
      client.close();
    }
  });

  it('steers: pause and resume a worker name (its worker honours it), pause, resume and run a task now', async () => {
    const client = connect({ config: db.config() });
    const worker = await startWorker({ name: 'api-steer', config: db.config(), jobs: { count: async (_task, ctx) => ({ run: ctx.runs }) } });
    try {
      const paused = await client.pause('api-steer');
      expect(paused).to.include({ worker: 'api-steer', paused: true, changed: true, hasTasks: false });
      await waitFor(async () => worker.paused, { timeoutMs: 5_000, what: 'the worker to see the pause' });
      expect(await client.pause('api-steer')).to.include({ paused: true, changed: false });

      const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
      const task = await client.create({ worker: 'api-steer', date: tomorrow, job: 'count', repeat: { days: 1 } });
      const asked = await client.runNow(task._id);
      expect(asked.run_now).to.be.a('string');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect((await client.get(task._id)).executions, 'no run while the worker is paused').to.equal(undefined);
      expect(await client.resume('api-steer')).to.include({ paused: false, changed: true, hasTasks: true });
      const ran = await waitFor(async () => {
        const doc = await client.get(task._id);
        return doc.executions === 1 && doc.run_now === undefined ? doc : undefined;
      }, { timeoutMs: 10_000, what: 'the run now' });
      expect(ran).to.deep.include({ date: tomorrow, result: { run: 1 } });

      expect((await client.pauseTask(task._id)).status).to.equal('paused');
      const refused = await client.runNow(task._id).then(() => null, (e: unknown) => e);
      expect((refused as AfterError).code).to.equal('E_ACTION');
      expect((await client.resumeTask(task._id)).status).to.equal('waiting');
      expect(((await client.resumeTask(task._id).then(() => null, (e: unknown) => e)) as AfterError).code).to.equal('E_ACTION');
    } finally {
      await worker.stop();
      client.close();
    }
  });

  it('refuses a jobs map with a name that cannot be a job, naming every problem', () => {
    const bad = (): unknown => registryFromFunctions({ '../x': async () => 1, exec: async () => 2, ok: async () => 3 }, { builtins: { exec: true, webhook: true } });
    expect(bad).to.throw(AfterError).with.property('code', 'E_JOBS_INVALID');
    const registry = registryFromFunctions({ ok: async () => 3 }, { builtins: { exec: false, webhook: true } });
    expect(registry.names()).to.deep.equal(['ok', 'webhook']);
    expect(registry.resolve('__proto__')).to.equal(undefined);
  });
});

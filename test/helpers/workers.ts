/**
 * Worker instances as a user starts them: `after start <name>` as real processes, each one
 * stopped (SIGTERM, awaited) when the test that started it ends, and what the `records`
 * fixture job wrote during the test.
 *
 *   const w = await startWorker(db, 'mailer', { args: ['--lease', '3000'] });
 *   ...
 *   expect(readRecords().map((r) => r.id)).to.deep.equal([id]);
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, spawnCli, type ChildHandle, type CliOptions } from './cli';
import type { TestDb } from './db';
import { afterThisTest } from './test-scope';

/** The jobs of the integration tests, named by behaviour (test/fixtures/jobs). */
export const FIXTURE_JOBS = path.join(REPO_ROOT, 'test', 'fixtures', 'jobs');

export interface WorkerProcess {
  child: ChildHandle;
  /** The instance id it printed when ready (what `lease.instance` and `last_run.instance` hold). */
  instance: string;
}

export interface StartWorkerOptions {
  /** The jobs folder. @default FIXTURE_JOBS */
  jobs?: string;
  /** More arguments of `after start`: `['--lease', '3000']`. */
  args?: string[];
  /** The environment instead of `db.env` (a config file of the test's own, a URL with a password). */
  env?: Record<string, string>;
  /** How long it may take to print that it is ready. @default 30000 */
  readyTimeoutMs?: number;
}

/**
 * `after start <name> --jobs <jobs> [...args]`, resolved once it printed that it is ready.
 * Its `records` job writes to this test's record file (readRecords()). It is stopped when the
 * test ends, unless the test stopped it first.
 */
export async function startWorker(db: TestDb, name: string, options: StartWorkerOptions = {}): Promise<WorkerProcess> {
  const child = startCli(['start', name, '--jobs', options.jobs ?? FIXTURE_JOBS, ...(options.args ?? [])], {
    env: { ...(options.env ?? db.env), AFTER_TEST_RECORD_FILE: testRecordFile() },
  });
  const ready = await child.waitForOutput(new RegExp(`worker ${name} ready \\(instance (\\S+),`), options.readyTimeoutMs ?? 30_000);
  return { child, instance: ready[1]! };
}

/** `after <args>` left running for the rest of the test (a dashboard, say), then SIGTERM, awaited. */
export function startCli(args: string[], options: CliOptions = {}): ChildHandle {
  const child = spawnCli(args, options);
  afterThisTest(() => stop(child));
  return child;
}

/** SIGTERM each worker still running and wait for it to exit (a stop lets runs finish). */
export async function stopWorkers(workers: ReadonlyArray<WorkerProcess>): Promise<void> {
  await Promise.all(workers.map((w) => stop(w.child)));
}

async function stop(child: ChildHandle): Promise<void> {
  if (!child.running) return;
  child.kill('SIGTERM');
  await child.exited;
}

let recordFile: string | undefined;

/** The file the `records` job of this test's workers appends to (AFTER_TEST_RECORD_FILE); a new one each test. */
export function testRecordFile(): string {
  if (recordFile === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-records-'));
    recordFile = path.join(dir, 'records.txt');
    afterThisTest(() => {
      recordFile = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    });
  }
  return recordFile;
}

/** Lines the `records` job wrote in this test, in order: `<task id> <ISO start time>`. */
export function readRecords(): Array<{ id: string; startedAt: number }> {
  const file = testRecordFile();
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, at] = line.split(' ');
      return { id: id!, startedAt: Date.parse(at!) };
    });
}

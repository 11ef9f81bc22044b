/**
 * What every workload needs: a fresh embedded server (pouchdb-server on a free port in a temp
 * folder), one fresh database per workload initialised as `after init` does, the worker as a
 * real child process (`node bin/after start bench ...`), and /proc readings of a process.
 *
 * The bench talks to the database with plain `fetch`, not through After's store, so the
 * "raw" figures are the database's own cost with the leanest client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, type AfterConfig } from '../src/config';
import { readAdminCredentials, type AdminCredentials } from '../src/embedded/admin-credentials';
import { startEmbedded, stopEmbedded } from '../src/embedded/server';
import { silentLogger } from '../src/log';
import { initDatabase } from '../src/store/design';
import type { TaskDoc } from '../src/types';
// The same probe the tests use: the bench is dev tooling beside them.
import { freePort } from '../test/helpers/ports';
import { DoneTracker } from './done-tracker';

/** This file runs from dist/bench. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const AFTER_BIN = path.join(REPO_ROOT, 'bin', 'after');
export const BENCH_JOBS_DIR = path.join(REPO_ROOT, 'bench', 'jobs');
const LAG_PROBE = path.join(__dirname, 'lag-probe.js');
export const WORKER_NAME = 'bench';
/** The job in bench/jobs that stamps its own start time into the task's result. */
export const STAMP_JOB = 'stamp';

export interface BulkRow {
  id?: string;
  rev?: string;
  error?: string;
  reason?: string;
}

export interface BenchServer {
  url: string;
  pid: number;
  root: string;
  /** A fresh database, initialised like `after init`. `config` is merged into config.json. */
  newDb(label: string, config?: Record<string, unknown>): Promise<BenchDb>;
  stop(): Promise<void>;
}

export interface BenchDb {
  name: string;
  /** The environment a worker of this database is started with. */
  env: Record<string, string>;
  config: AfterConfig;
  request<T>(method: string, docPath: string, body?: unknown): Promise<T>;
  /** One `_bulk_docs`; throws unless every document was written. */
  bulkDocs(docs: readonly object[]): Promise<BulkRow[]>;
  /** Every task document (design documents left out), read in pages. */
  allTasks(): Promise<TaskDoc[]>;
  /** Task count by status, from `_design/after/_view/by_worker_status`. */
  countsByStatus(): Promise<Record<string, number>>;
  destroy(): Promise<void>;
}

export async function startBenchServer(): Promise<BenchServer> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-'));
  const home = path.join(root, 'db-home');
  const dir = path.join(root, 'data');
  const port = await freePort();
  const started = await startEmbedded({ host: '127.0.0.1', port, dir, home, background: true });
  return {
    url: started.url,
    pid: started.pid,
    root,
    // Creating each database and its design documents needs the admin `startEmbedded` generated.
    newDb: (label, config = {}) => createDb(root, started.url, readAdminCredentials(home)!, label, config),
    async stop() {
      await stopEmbedded(home);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

async function createDb(root: string, url: string, admin: AdminCredentials, label: string, extraConfig: Record<string, unknown>): Promise<BenchDb> {
  const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
  const place = path.join(root, name);
  fs.mkdirSync(place, { recursive: true });
  const configFile = path.join(place, 'config.json');
  // The embedded section only keeps a stray `after db start` off the default port 5984.
  const fileConfig = {
    log: { level: 'info', dir: path.join(place, 'logs') },
    embedded: { host: '127.0.0.1', port: await freePort(), dir: path.join(place, 'cli-data') },
    ...extraConfig,
  };
  fs.writeFileSync(configFile, `${JSON.stringify(fileConfig, null, 2)}\n`);
  const env = { AFTER_COUCHDB_URL: url, AFTER_DB: name, AFTER_HOME: path.join(place, 'home'), AFTER_CONFIG: configFile };
  const config = loadConfig(env, place);
  await initDatabase({ ...config, couchdb: { ...config.couchdb, username: admin.name, password: admin.password } }, { log: silentLogger() });
  const dbUrl = `${url}/${name}`;

  const request = async <T>(method: string, docPath: string, body?: unknown): Promise<T> => {
    const res = await fetch(docPath ? `${dbUrl}/${docPath}` : dbUrl, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${name}/${docPath}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  };

  return {
    name,
    env,
    config,
    request,
    async bulkDocs(docs) {
      const rows = await request<BulkRow[]>('POST', '_bulk_docs', { docs });
      const failed = rows.filter((row) => row.error !== undefined);
      if (failed.length > 0) throw new Error(`_bulk_docs: ${failed.length} of ${docs.length} not written (first: ${failed[0]!.id} ${failed[0]!.error})`);
      return rows;
    },
    async allTasks() {
      const tasks: TaskDoc[] = [];
      const pageSize = 5000;
      let startKey: string | undefined;
      for (;;) {
        const qs = new URLSearchParams({ include_docs: 'true', limit: String(pageSize + 1) });
        if (startKey !== undefined) qs.set('startkey', JSON.stringify(startKey));
        const page = await request<{ rows: Array<{ id: string; doc: TaskDoc }> }>('GET', `_all_docs?${qs}`);
        const rows = page.rows.slice(0, pageSize);
        for (const row of rows) if (!row.id.startsWith('_design/')) tasks.push(row.doc);
        if (page.rows.length <= pageSize) return tasks;
        startKey = page.rows[pageSize]!.id;
      }
    },
    async countsByStatus() {
      const res = await request<{ rows: Array<{ key: [string, string | null]; value: number }> }>(
        'GET',
        '_design/after/_view/by_worker_status?group=true',
      );
      const counts: Record<string, number> = {};
      for (const row of res.rows) counts[String(row.key[1])] = (counts[String(row.key[1])] ?? 0) + row.value;
      return counts;
    },
    async destroy() {
      const res = await fetch(dbUrl, { method: 'DELETE' });
      await res.arrayBuffer();
    },
  };
}

export interface WorkerOptions {
  concurrency: number;
  /** A folder to write the worker's `--cpu-prof` profile into. */
  profileDir?: string;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Date.now() just before the spawn. */
  readonly spawnedAtMs: number;
  /** Resolves with Date.now() when the worker logs "worker bench ready". */
  readonly ready: Promise<number>;
  /** Date.now() at which each task's "done" line was seen, by task id. */
  readonly doneAtMs: ReadonlyMap<string, number>;
  /** Resolves with the time of the `count`-th "done" line; rejects after `timeoutMs`. */
  waitForDone(count: number, timeoutMs: number): Promise<number>;
  /** What the worker printed last (for error messages). */
  tail(): string;
  /** SIGTERM, wait for the exit; returns the event-loop delay the probe recorded. */
  stop(): Promise<EventLoopLag | undefined>;
}

export interface EventLoopLag {
  p50: number;
  p99: number;
  max: number;
}

const READY_LINE = new RegExp(`worker ${WORKER_NAME} ready`);
const DONE_LINE = /task (\S+) done after/;

/** `node bin/after start bench --jobs bench/jobs --concurrency N`, as an operator runs it. */
export function startWorker(db: BenchDb, options: WorkerOptions): WorkerProcess {
  const lagFile = path.join(path.dirname(db.env.AFTER_CONFIG!), `lag-${Date.now()}.json`);
  const nodeArgs = ['-r', LAG_PROBE];
  if (options.profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
  const args = [...nodeArgs, AFTER_BIN, 'start', WORKER_NAME, '--jobs', BENCH_JOBS_DIR, '--concurrency', String(options.concurrency)];
  const spawnedAtMs = Date.now();
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...withoutAfterVariables(process.env), ...db.env, BENCH_LAG_FILE: lagFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('cannot start the worker');
  const pid = child.pid;
  let lastLines: string[] = [];
  const done = new DoneTracker({ exited: () => child.exitCode !== null, tail: () => lastLines.join('\n') });
  let resolveReady!: (at: number) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<number>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) => {
    rejectReady(new Error(`the worker exited (code ${code}) before it was ready: ${lastLines.join('\n')}`));
    done.wake();
  });

  const onLine = (line: string): void => {
    const now = Date.now();
    lastLines.push(line);
    if (lastLines.length > 20) lastLines = lastLines.slice(-20);
    const doneLine = DONE_LINE.exec(line);
    if (doneLine) {
      done.markDone(doneLine[1]!, now);
    } else if (READY_LINE.test(line)) {
      resolveReady(now);
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) splitLines(stream, onLine);

  return {
    pid,
    spawnedAtMs,
    ready,
    doneAtMs: done.doneAtMs,
    waitForDone: (count, timeoutMs) => done.waitForDone(count, timeoutMs),
    tail: () => lastLines.join('\n'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(late);
      }
      try {
        return JSON.parse(fs.readFileSync(lagFile, 'utf8')) as EventLoopLag;
      } catch {
        return undefined;
      }
    },
  };
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    buffered += text;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  });
}

/** The bench's own AFTER_* variables must not leak into the worker it starts. */
function withoutAfterVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('AFTER_') && key !== 'NODE_OPTIONS'));
}

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Linux's USER_HZ: /proc reports CPU time in hundredths of a second. */
export const TICKS_PER_SECOND = 100;

/** CPU use of `pid` between two readings, in % of one core. */
export function cpuPercent(ticksBefore: number, ticksAfter: number, elapsedMs: number): number {
  return ((ticksAfter - ticksBefore) / TICKS_PER_SECOND / (elapsedMs / 1000)) * 100;
}

/** Resident set size of a process, in bytes (VmRSS in /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : Number.NaN;
}

/** A task document of the bench worker running the stamp job. */
export function benchTask(id: string, dateMs: number): TaskDoc {
  return { _id: id, worker: WORKER_NAME, status: 'waiting', date: new Date(dateMs).toISOString(), job: { name: STAMP_JOB } } as TaskDoc;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

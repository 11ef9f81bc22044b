/**
 * The embedded CouchDB-compatible server: express-pouchdb 4.2 (pouchdb-server's engine) keeping
 * LevelDB files in `embedded.dir`, started as a child process (launcher.ts) so that After talks
 * to it over HTTP exactly as it talks to CouchDB. It is locked by default: an admin generated on
 * the first start (admin-credentials.ts) and a guard in front of every request (guard.ts).
 *
 * Files in AFTER_HOME (mode 0700): `db.pid` (the server's pid), `db.json` (its host, port, dir,
 * url), `db.log` (its stdout/stderr and its own log) and `db-admin.json` (the admin, 0600).
 * In the data folder: `pouchdb-server.json`, the server's config (admins hashed there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AfterError, toError } from '../errors';
import { isAlive } from '../process';
import { silentLogger, type Logger } from '../log';
import { ensureAdminCredentials } from './admin-credentials';
import { launcherSettings } from './server-settings';

export interface EmbeddedOptions {
  /** Address to bind. @default config.embedded.host ("127.0.0.1") */
  host: string;
  port: number;
  /** Where the LevelDB files live (created when missing). */
  dir: string;
  /** AFTER_HOME: pid, state and log files go here. */
  home: string;
  /** Detach and return once the server answers; otherwise stay attached (see `exited`). */
  background: boolean;
  /** More Host names the server answers to. @default config.embedded.allowed_hosts ([]) */
  allowedHosts?: readonly string[];
  /** Web origins allowed to call it from a browser (CORS). @default [] */
  corsOrigins?: readonly string[];
  /** Largest document, bytes. @default 8000000 (CouchDB's max_document_size) */
  maxDocumentSize?: number;
  /** Largest `_bulk_docs` body, bytes. @default 67108864 */
  maxRequestSize?: number;
  /** Time between compaction passes; 0 = never. @default 300000 */
  compactIntervalMs?: number;
  log?: Logger;
}

export interface EmbeddedServer {
  /** Server URL (no database name, no credentials). */
  url: string;
  pid: number;
  /** Foreground only: resolves with the server's exit code once it stops. */
  exited?: Promise<number>;
}

export interface EmbeddedStatus {
  running: boolean;
  pid?: number;
  url?: string;
  dir?: string;
}

/** What `db.json` holds about the server started from this home. */
interface EmbeddedState {
  pid: number;
  host: string;
  port: number;
  dir: string;
  url: string;
  started_at: string;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_LINES = 15;

export function embeddedFiles(home: string): { pid: string; state: string; log: string } {
  return { pid: path.join(home, 'db.pid'), state: path.join(home, 'db.json'), log: path.join(home, 'db.log') };
}

/** Start the embedded server; refuses when one of ours runs or the port is taken. */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const log = options.log ?? silentLogger();
  const dir = path.resolve(options.dir);
  const home = path.resolve(options.home);
  const files = embeddedFiles(home);
  const url = serverUrl(options.host, options.port);

  const running = await embeddedStatus(home);
  if (running.running) {
    throw new AfterError('E_EMBEDDED_RUNNING', `the embedded server already runs at ${running.url} (pid ${running.pid}); stop it with 'after db stop'`);
  }
  await refuseTakenPort(options.host, options.port, home);

  fs.mkdirSync(dir, { recursive: true });
  // Before anything is written there: AFTER_HOME is made 0700 and the admin file 0600.
  const admin = ensureAdminCredentials(home);
  const settings = launcherSettings({ ...options, dir }, files.log, admin);
  const args = [LAUNCHER, JSON.stringify(settings)];

  let child: ChildProcess;
  if (options.background) {
    const out = fs.openSync(files.log, 'a');
    try {
      // cwd = dir: express-pouchdb creates files relative to its cwd when not told otherwise.
      child = spawn(process.execPath, args, { cwd: dir, detached: true, stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
  } else {
    child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const pid = child.pid;
  if (pid === undefined) {
    const spawnError = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new AfterError('E_EMBEDDED_START', `cannot start the embedded server: ${spawnError.message}`);
  }
  const exitCode = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  const state: EmbeddedState = { pid, host: options.host, port: options.port, dir, url, started_at: new Date().toISOString() };
  fs.writeFileSync(files.pid, `${pid}\n`);
  fs.writeFileSync(files.state, `${JSON.stringify(state, null, 2)}\n`);

  const removeSignalForwarding = options.background ? () => {} : forwardSignals(child);
  try {
    await waitUntilAnswering(url, exitCode, files.log, options.background);
  } catch (err) {
    removeSignalForwarding();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exitCode;
    removeFiles(files, pid);
    throw err;
  }
  log.info(`embedded server ready at ${url} (pid ${pid}, data in ${dir})`);

  if (options.background) {
    child.unref();
    return { url, pid };
  }
  const exited = exitCode.then((code) => {
    removeSignalForwarding();
    removeFiles(files, pid);
    return code;
  });
  return { url, pid, exited };
}

/** Stop the server started from `home` (SIGTERM, then SIGKILL after 10 s). */
export async function stopEmbedded(home: string): Promise<{ stopped: boolean; pid?: number }> {
  const files = embeddedFiles(path.resolve(home));
  const pid = readPid(files.pid);
  if (pid === undefined) return { stopped: false };
  if (!isOurServer(pid)) {
    removeFiles(files, pid);
    return { stopped: false, pid };
  }
  signal(pid, 'SIGTERM');
  if (!(await waitUntilGone(pid, STOP_GRACE_MS))) {
    signal(pid, 'SIGKILL');
    if (!(await waitUntilGone(pid, STOP_GRACE_MS))) {
      throw new AfterError('E_EMBEDDED_STOP', `the embedded server (pid ${pid}) did not exit after SIGKILL`);
    }
  }
  removeFiles(files, pid);
  return { stopped: true, pid };
}

/** Whether the server started from `home` runs; a stale pid file is reported as not running. */
export async function embeddedStatus(home: string): Promise<EmbeddedStatus> {
  const files = embeddedFiles(path.resolve(home));
  const pid = readPid(files.pid);
  if (pid === undefined || !isOurServer(pid)) return { running: false };
  const state = readState(files.state);
  if (!state || state.pid !== pid) return { running: true, pid };
  return { running: true, pid, url: state.url, dir: state.dir };
}

/**
 * The server started from `home` when it runs: where it listens, and whether it is locked
 * (false for a pouchdb-server an older After started, which has no admin until restarted).
 */
export function runningEmbeddedServer(home: string): { url: string; host: string; port: number; locked: boolean } | null {
  const files = embeddedFiles(path.resolve(home));
  const pid = readPid(files.pid);
  if (pid === undefined || !isOurServer(pid)) return null;
  const state = readState(files.state);
  if (!state || state.pid !== pid) return null;
  return { url: state.url, host: state.host, port: state.port, locked: !isOldPouchdbServer(pid) };
}

export function serverUrl(host: string, port: number): string {
  // A wildcard bind is reached through loopback.
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** The server's entry point: dist/src/embedded/launcher.js, beside this file. */
const LAUNCHER = path.join(__dirname, 'launcher.js');
/** What names our server in /proc/<pid>/cmdline; `pouchdb-server` for one an older After started. */
const SERVER_COMMAND_MARKS = [path.join('embedded', 'launcher.js'), 'pouchdb-server'];

/** One-line refusal naming who holds the port: our server (per db.json) or something else. */
async function refuseTakenPort(host: string, port: number, home: string): Promise<void> {
  const problem = await tryListen(host, port);
  if (!problem) return;
  if (problem !== 'EADDRINUSE') {
    throw new AfterError('E_EMBEDDED_START', `cannot bind ${host}:${port} (${problem})`);
  }
  const state = readState(embeddedFiles(home).state);
  if (state && state.port === port && isOurServer(state.pid)) {
    throw new AfterError('E_PORT_TAKEN', `port ${port} is taken by the embedded server at ${state.url} (pid ${state.pid})`);
  }
  const other = await describeServerAt(serverUrl(host, port));
  throw new AfterError('E_PORT_TAKEN', `port ${port} on ${host} is taken by ${other}; choose another with --port`);
}

function tryListen(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

async function describeServerAt(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as Record<string, unknown>;
    if (body.couchdb === 'Welcome') return `a CouchDB ${String(body.version)} server`;
    if (body['express-pouchdb']) return `another pouchdb-server (${String(body.version)}) not started from this AFTER_HOME`;
  } catch {
    // not HTTP, or not JSON: some other program
  }
  return 'another program';
}

/** Resolves once `GET /` answers; rejects when the child exits first or after 30 s. */
async function waitUntilAnswering(url: string, exitCode: Promise<number>, logFile: string, background: boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: number | undefined;
  void exitCode.then((code) => (exited = code));
  const logHint = (): string => (background ? `; last lines of ${logFile}:\n${tailLines(logFile, LOG_TAIL_LINES)}` : '');
  for (;;) {
    if (exited !== undefined) {
      throw new AfterError('E_EMBEDDED_START', `the embedded server exited with code ${exited} while starting${logHint()}`);
    }
    try {
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
      const welcome = (await res.json()) as Record<string, unknown>;
      // Only our server's welcome counts: another program may have taken the port meanwhile.
      if (res.ok && welcome['express-pouchdb'] !== undefined) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new AfterError('E_EMBEDDED_START', `the embedded server did not answer at ${url} within ${READY_TIMEOUT_MS / 1000} s${logHint()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function tailLines(file: string, count: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-count).join('\n') || '(empty)';
  } catch (err) {
    return `(cannot read: ${toError(err).message})`;
  }
}

/** Foreground: Ctrl-C or a SIGTERM to us stops the server too, and we wait for it. */
function forwardSignals(child: ChildProcess): () => void {
  const forward = (sig: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return () => {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  };
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function readState(file: string): EmbeddedState | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as EmbeddedState;
    return typeof state.pid === 'number' && typeof state.port === 'number' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Remove pid and state files, unless they already describe a newer server. */
function removeFiles(files: { pid: string; state: string }, pid: number): void {
  if (readPid(files.pid) === pid) fs.rmSync(files.pid, { force: true });
  if (readState(files.state)?.pid === pid) fs.rmSync(files.state, { force: true });
}

/**
 * The pid is alive and is our server: after a reboot a stale pid file may name an unrelated
 * process that got the same pid. Where /proc is missing, liveness alone decides.
 */
function isOurServer(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return SERVER_COMMAND_MARKS.some((mark) => cmdline.includes(mark));
  } catch {
    return true;
  }
}

function isOldPouchdbServer(pid: number): boolean {
  try {
    return !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SERVER_COMMAND_MARKS[0]!);
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurServer(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !isOurServer(pid);
}

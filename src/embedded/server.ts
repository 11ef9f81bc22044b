/**
 * The embedded CouchDB-compatible server: express-pouchdb 4.2 (pouchdb-server's engine) keeping
 * LevelDB files in `embedded.dir`, started as a child process (launcher.ts) so that After talks
 * to it over HTTP exactly as it talks to CouchDB. It is locked by default: an admin generated on
 * the first start (admin-credentials.ts) and a guard in front of every request (guard.ts).
 *
 * Files in AFTER_HOME (mode 0700): `db.pid` (the server's pid), `db.json` (its host, port, dir,
 * url), `db.log` (its stdout/stderr and its own log) and `db-admin.json` (the admin, 0600).
 * In the data folder: `pouchdb-server.json`, the server's config (admins hashed there).
 * The pid and state files are server-files.ts; the readiness and port probes server-probes.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { delay } from '../clock';
import { AfterError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { ensureAdminCredentials } from './admin-credentials';
import { embeddedFiles, isOldPouchdbServer, isOurServer, readPid, removeServerFiles, runningServer, writeServerFiles, type EmbeddedState } from './server-files';
import { refuseTakenPort, waitUntilAnswering } from './server-probes';
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
  /** How often the dashboard's views are brought up to date; 0 = never. @default 1000 */
  warmIntervalMs?: number;
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

const STOP_GRACE_MS = 10_000;
/** The server's entry point: dist/src/embedded/launcher.js, beside this file. */
const LAUNCHER = path.join(__dirname, 'launcher.js');

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
  await refuseTakenPort(options.host, options.port, url, home);

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
  writeServerFiles(files, state);

  const removeSignalForwarding = options.background ? () => {} : forwardSignals(child);
  try {
    await waitUntilAnswering(url, exitCode, files.log, options.background);
  } catch (err) {
    removeSignalForwarding();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exitCode;
    removeServerFiles(files, pid);
    throw err;
  }
  log.info(`embedded server ready at ${url} (pid ${pid}, data in ${dir})`);

  if (options.background) {
    child.unref();
    return { url, pid };
  }
  const exited = exitCode.then((code) => {
    removeSignalForwarding();
    removeServerFiles(files, pid);
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
    removeServerFiles(files, pid);
    return { stopped: false, pid };
  }
  signal(pid, 'SIGTERM');
  if (!(await waitUntilGone(pid, STOP_GRACE_MS))) {
    signal(pid, 'SIGKILL');
    if (!(await waitUntilGone(pid, STOP_GRACE_MS))) {
      throw new AfterError('E_EMBEDDED_STOP', `the embedded server (pid ${pid}) did not exit after SIGKILL`);
    }
  }
  removeServerFiles(files, pid);
  return { stopped: true, pid };
}

/** Whether the server started from `home` runs; a stale pid file is reported as not running. */
export async function embeddedStatus(home: string): Promise<EmbeddedStatus> {
  const running = runningServer(home);
  if (!running) return { running: false };
  if (!running.state) return { running: true, pid: running.pid };
  return { running: true, pid: running.pid, url: running.state.url, dir: running.state.dir };
}

/**
 * The server started from `home` when it runs: where it listens, and whether it is locked
 * (false for a pouchdb-server an older After started, which has no admin until restarted).
 */
export function runningEmbeddedServer(home: string): { url: string; host: string; port: number; locked: boolean } | null {
  const running = runningServer(home);
  if (!running?.state) return null;
  const { url, host, port } = running.state;
  return { url, host, port, locked: !isOldPouchdbServer(running.pid) };
}

export function serverUrl(host: string, port: number): string {
  // A wildcard bind is reached through loopback.
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
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
    await delay(50);
  }
  return !isOurServer(pid);
}

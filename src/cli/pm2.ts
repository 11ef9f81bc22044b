/**
 * All of pm2: background workers run as pm2 processes named `after-<worker>` under a pm2
 * daemon of After's own (PM2_HOME = `<home>/pm2`), so they never mix with a user's other
 * pm2 apps and a temporary AFTER_HOME gives a test its own daemon.
 *
 * pm2 computes its paths from PM2_HOME when its module is first required, so this module
 * sets the environment first and requires pm2 lazily, once per process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SECRET_ENV_KEYS } from '../config/secret-env';
import { createPrivateFile } from '../log';
import { AfterError, toError } from '../errors';
import { isAlive } from '../process';
import { pm2ProcessName, workerOfProcess } from './worker-name';

type Pm2Api = typeof import('pm2');
type Pm2Process = import('pm2').ProcessDescription;


export interface WorkerProcess {
  worker: string;
  /** pm2's status: online, launching, stopping, stopped, errored... */
  state: string;
  pid: number | null;
  /** Time since the current process started, when online. */
  uptimeMs: number | null;
  restarts: number;
}

export interface BackgroundWorker {
  worker: string;
  /** The script pm2 runs (bin/after) and its arguments. */
  script: string;
  args: string[];
  cwd: string;
  /**
   * The only After-specific environment the process gets; no credentials in it. Called once
   * the name is known to be free, so a refused start leaves a running worker's files alone.
   */
  env(): Record<string, string>;
  /** How long pm2 waits after SIGINT before SIGKILL. */
  killTimeoutMs: number;
}

export function pm2Home(afterHome: string): string {
  return path.join(afterHome, 'pm2');
}

/** The pid of the pm2 daemon of this PM2_HOME when it is alive, else null. */
export function daemonPid(home: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

let loaded: { api: Pm2Api; home: string } | null = null;

function loadPm2(home: string): Pm2Api {
  if (loaded) {
    if (loaded.home !== home) throw new AfterError('E_PM2', `pm2 already loaded for ${loaded.home}, not ${home}`);
    return loaded.api;
  }
  process.env.PM2_HOME = home;
  // No pm2.io agent: nothing of a worker leaves the machine.
  process.env.PM2_NO_INTERACTION = 'true';
  // pm2 copies this process's environment into the daemon it spawns and into every app it
  // starts, where `pm2 show`/`pm2 jlist` display it. Credentials reach a worker through its
  // secrets file instead (config.ts reads AFTER_SECRETS_FILE), so they leave the
  // environment before pm2 can copy it.
  for (const key of SECRET_ENV_KEYS) delete process.env[key];
  fs.mkdirSync(home, { recursive: true });
  const api = require('pm2') as Pm2Api;
  loaded = { api, home };
  return api;
}

function call<T>(run: (callback: (err: unknown, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    run((err, value) => (err ? reject(pm2Error(err)) : resolve(value)));
  });
}

function pm2Error(err: unknown): AfterError {
  const first = Array.isArray(err) ? err[0] : err;
  return new AfterError('E_PM2', `pm2: ${toError(first).message}`);
}

/** Connect to (starting if needed) the daemon, run `use`, always disconnect. */
async function withDaemon<T>(home: string, use: (pm2: Pm2Api) => Promise<T>): Promise<T> {
  const pm2 = loadPm2(home);
  await call<unknown>((cb) => pm2.connect((err) => cb(err, undefined)));
  try {
    return await use(pm2);
  } finally {
    pm2.disconnect();
  }
}

function describeProcess(proc: Pm2Process, now: number): WorkerProcess | null {
  const worker = workerOfProcess(proc.name);
  if (worker === null) return null;
  const env = proc.pm2_env ?? {};
  const state = env.status ?? 'unknown';
  const online = state === 'online';
  return {
    worker,
    state,
    pid: online && proc.pid ? proc.pid : null,
    uptimeMs: online && env.pm_uptime ? Math.max(0, now - env.pm_uptime) : null,
    restarts: env.restart_time ?? 0,
  };
}

async function ourProcesses(pm2: Pm2Api): Promise<{ all: Pm2Process[]; workers: WorkerProcess[] }> {
  const all = await call<Pm2Process[]>((cb) => pm2.list(cb));
  const now = Date.now();
  const workers = all.map((proc) => describeProcess(proc, now)).filter((w): w is WorkerProcess => w !== null);
  return { all, workers };
}

/** Background workers; an empty list (and no daemon started) when no daemon runs. */
export async function listWorkers(home: string): Promise<WorkerProcess[]> {
  if (daemonPid(home) === null) return [];
  return withDaemon(home, async (pm2) => (await ourProcesses(pm2)).workers);
}

/** Start `after start <worker>` under pm2; fails when a process of that worker exists. */
export async function startBackground(home: string, spec: BackgroundWorker): Promise<WorkerProcess> {
  const name = pm2ProcessName(spec.worker);
  return withDaemon(home, async (pm2) => {
    const existing = (await ourProcesses(pm2)).workers.find((w) => w.worker === spec.worker);
    if (existing) {
      throw new AfterError(
        'E_WORKER_RUNNING',
        `worker ${spec.worker} is already started (${existing.state}${existing.pid ? `, pid ${existing.pid}` : ''}); stop it first with 'after stop ${spec.worker}'`,
      );
    }
    const logs = path.join(home, 'logs');
    // pm2 appends to these without choosing their mode: made private first.
    for (const file of [`${name}-out.log`, `${name}-error.log`]) createPrivateFile(path.join(logs, file));
    await call<unknown>((cb) =>
      pm2.start(
        {
          name,
          script: spec.script,
          args: spec.args,
          cwd: spec.cwd,
          interpreter: process.execPath,
          exec_mode: 'fork',
          env: spec.env(),
          // Belt and braces beside loadPm2's cleanup: never copy a credential into the app env.
          filter_env: [...SECRET_ENV_KEYS],
          autorestart: true,
          watch: false,
          merge_logs: true,
          output: path.join(logs, `${name}-out.log`),
          error: path.join(logs, `${name}-error.log`),
          // pm2 sends SIGINT first (the worker stops taking tasks and lets runs finish within
          // worker.grace_ms); SIGKILL only after this.
          kill_timeout: spec.killTimeoutMs,
          // A worker that exits within 5 s of starting (bad jobs folder, bad config) counts as
          // unstable; pm2 gives up after 10 of those in a row and marks it errored.
          min_uptime: 5000,
          max_restarts: 10,
          restart_delay: 1000,
        },
        cb,
      ),
    );
    const started = (await ourProcesses(pm2)).workers.find((w) => w.worker === spec.worker);
    return started ?? { worker: spec.worker, state: 'launching', pid: null, uptimeMs: null, restarts: 0 };
  });
}

export interface StopReport {
  /** Workers still under pm2 after this stop. */
  remaining: string[];
  /** True when nothing was left, so the daemon was stopped too. */
  daemonStopped: boolean;
}

/** Stop and remove a background worker; stop the daemon when it serves nothing anymore. */
export async function stopBackground(home: string, worker: string): Promise<StopReport> {
  if (daemonPid(home) === null) throw notRunning(worker, []);
  const name = pm2ProcessName(worker);
  const report = await withDaemon(home, async (pm2) => {
    const before = await ourProcesses(pm2);
    if (!before.workers.some((w) => w.worker === worker)) {
      throw notRunning(worker, before.workers.map((w) => w.worker));
    }
    // delete = stop (SIGINT, wait up to kill_timeout) + forget, so pm2 never restarts it.
    await call<unknown>((cb) => pm2.delete(name, cb));
    const after = await ourProcesses(pm2);
    const remaining = after.workers.map((w) => w.worker);
    if (after.all.length > 0) return { remaining, daemonStopped: false };
    await call<unknown>((cb) => pm2.killDaemon(cb));
    return { remaining, daemonStopped: true };
  });
  if (report.daemonStopped) await waitForDaemonExit(home);
  return report;
}

/** Empty pm2's own out/err logs of a worker's process, when it exists. */
export async function flushLogs(home: string, worker: string): Promise<boolean> {
  if (daemonPid(home) === null) return false;
  return withDaemon(home, async (pm2) => {
    const { workers } = await ourProcesses(pm2);
    if (!workers.some((w) => w.worker === worker)) return false;
    await call<unknown>((cb) => pm2.flush(pm2ProcessName(worker), cb));
    return true;
  });
}

/**
 * Send `signal` to a background worker: SIGHUP reloads its configuration and jobs, SIGUSR2 opens
 * its log files again (and pm2 then reopens its own out and error files of it). Fails when no
 * process of that worker runs.
 */
export async function signalBackground(home: string, worker: string, signal: 'SIGHUP' | 'SIGUSR2'): Promise<WorkerProcess> {
  if (daemonPid(home) === null) throw notRunning(worker, []);
  return withDaemon(home, async (pm2) => {
    const { workers } = await ourProcesses(pm2);
    const found = workers.find((w) => w.worker === worker);
    if (!found) throw notRunning(worker, workers.map((w) => w.worker));
    if (found.state !== 'online') {
      throw new AfterError('E_WORKER_NOT_RUNNING', `background worker ${worker} is ${found.state}, not running (see 'after log ${worker}')`);
    }
    await call<unknown>((cb) => pm2.sendSignalToProcessName(signal, pm2ProcessName(worker), cb));
    if (signal === 'SIGUSR2') await call<unknown>((cb) => pm2.reloadLogs(cb));
    return found;
  });
}

function notRunning(worker: string, running: string[]): AfterError {
  const which = running.length ? `running: ${running.join(', ')}` : 'no workers run in the background';
  return new AfterError('E_WORKER_NOT_RUNNING', `no background worker named ${worker} (${which})`);
}

/** pm2's killDaemon answers before the daemon has exited; wait so nothing lingers after us. */
async function waitForDaemonExit(home: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (daemonPid(home) !== null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A foreground `after start` whose environment carries a credential (AFTER_COUCHDB_URL with a
 * password, or an AFTER_SECRETS_FILE) runs the worker in a child process started with that
 * taken out of its environment, and hands the values over through an inherited pipe.
 *
 * Why a second process: any program a job runs can read its parent's initial environment in
 * `/proc/<pid>/environ`, and deleting a variable from `process.env` does not change what the
 * kernel shows there. A process cannot rewrite that block, so the worker must start without it.
 * The launcher (the process the user started, whose pid `after status` shows) stays in the
 * foreground: it relays Ctrl-C and SIGTERM, and SIGHUP (reload) and SIGUSR2 (reopen the logs),
 * to the worker as messages on the pipe and exits with the worker's exit code, so the terminal,
 * a supervisor, logrotate and scripts see what they saw before.
 *
 * The worker runs in a session of its own, so a Ctrl-C on the terminal reaches the launcher
 * only and is relayed once. A supervisor that signals every process of the service (systemd's
 * default KillMode) reaches both: the worker counts a signal and the same relayed request
 * within a second as one. When the launcher dies without a word (SIGKILL, the terminal
 * closing), the pipe closes and the worker ends at once, as it would have died with it before.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { readSecretsFile, SECRET_ENV_KEYS } from '../config/secret-env';
import { AfterError } from '../errors';
import { exitCodeOf, setSteerSignalSource, setStopSignalSource, STEER_SIGNALS, STOP_SIGNALS, terminalHungUp, type StopSignalSource } from './signals';

/** What the launcher relays to its worker: the stop signals, and SIGHUP (reload) and SIGUSR2 (reopen logs). */
export const RELAYED_SIGNALS: readonly NodeJS.Signals[] = [...STOP_SIGNALS, ...STEER_SIGNALS];

/** Names the launched worker's end of the pipe: credentials first, then relayed stop requests. */
export const LAUNCH_FD_ENV = 'AFTER_LAUNCH_FD';
/** The pipe's file descriptor in the worker. */
const LAUNCH_FD = 3;
/** A signal and the same request relayed by the launcher within this long are one request. */
const SAME_REQUEST_MS = 1000;

let launchedBy: number | undefined;

/** The pid of the launcher when this process is a launched worker. */
export function launcherPid(): number | undefined {
  return launchedBy;
}

/** True when `env` carries a credential a worker must not keep in its own environment. */
export function carriesCredentials(env: NodeJS.ProcessEnv): boolean {
  if (env.AFTER_SECRETS_FILE) return true;
  const url = env.AFTER_COUCHDB_URL;
  if (!url) return false;
  try {
    const parsed = new URL(url);
    return parsed.username !== '' || parsed.password !== '';
  } catch {
    // config.ts refuses it; whatever it holds stays out of the worker's environment
    return true;
  }
}

/** A worker running as this process's child, its credentials handed over through the pipe. */
export interface LaunchedWorker {
  readonly pid: number | undefined;
  /** How the child ended; rejects when it could not be started at all. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Relay a request (a stop, SIGHUP or SIGUSR2) to the child, as a line on the pipe. */
  relay(signal: NodeJS.Signals): void;
}

/**
 * `after <argv>` again as a child with `values` written to its pipe and the credentials (and
 * AFTER_SECRETS_FILE) taken out of its environment. In a session of its own: a terminal's
 * Ctrl-C reaches this process only, which relays it.
 */
export function launchWorker(values: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv, binPath: string, argv: readonly string[]): LaunchedWorker {
  const childEnv: NodeJS.ProcessEnv = { ...env, [LAUNCH_FD_ENV]: String(LAUNCH_FD) };
  for (const key of [...SECRET_ENV_KEYS, 'AFTER_SECRETS_FILE']) delete childEnv[key];
  const child = spawn(process.execPath, [...process.execArgv, binPath, ...argv], {
    env: childEnv,
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    detached: true,
  });
  const pipe = child.stdio[LAUNCH_FD] as net.Socket;
  // The worker may be gone already (it failed at start); its exit code says why.
  pipe.on('error', () => undefined);
  pipe.write(`${JSON.stringify(values)}\n`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', (err) => reject(new AfterError('E_WORKER_START', `cannot start the worker process: ${err.message}`)));
    child.on('exit', (code, signal) => {
      pipe.destroy();
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid,
    exited,
    relay: (signal) => {
      if (!pipe.destroyed) pipe.write(`${signal}\n`);
    },
  };
}

/**
 * The foreground launcher: the worker as a child (launchWorker), with the credentials of this
 * command's environment, stop signals relayed; resolves with the exit code to exit with.
 */
export async function runWorkerInChild(env: NodeJS.ProcessEnv, binPath: string, argv: readonly string[]): Promise<number> {
  const values: Record<string, string> = {};
  for (const key of SECRET_ENV_KEYS) if (env[key]) values[key] = env[key]!;
  // As config.ts reads it: what the file holds wins over the environment.
  if (env.AFTER_SECRETS_FILE) Object.assign(values, readSecretsFile(env.AFTER_SECRETS_FILE));

  const worker = launchWorker(values, env, binPath, argv);
  const relay = (received: NodeJS.Signals): void => {
    // The terminal was closed: the user meant the worker to stop, not to reload.
    worker.relay(received === 'SIGHUP' && terminalHungUp() ? 'SIGTERM' : received);
  };
  for (const signal of RELAYED_SIGNALS) process.on(signal, relay);
  try {
    const { code, signal } = await worker.exited;
    if (signal !== null) {
      // Die the same way, so a shell or supervisor sees what it would have seen.
      for (const relayed of RELAYED_SIGNALS) process.off(relayed, relay);
      try {
        process.kill(process.pid, signal);
      } catch {
        // fall through to the conventional code
      }
      return exitCodeOf(signal);
    }
    return code ?? 1;
  } finally {
    for (const signal of RELAYED_SIGNALS) process.off(signal, relay);
  }
}

/**
 * In a launched worker (LAUNCH_FD_ENV set): reads the credentials from the pipe, before anything
 * else, and returns the environment the configuration is to be read from (the credentials in
 * it; this process's own environment is left without them). From then on stop requests come
 * from the launcher. Returns `env` unchanged in any other process.
 */
export function receiveFromLauncher(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const named = env[LAUNCH_FD_ENV];
  if (named === undefined) return env;
  const fd = Number(named);
  if (!Number.isInteger(fd) || fd < 3) throw new AfterError('E_LAUNCH', `${LAUNCH_FD_ENV} must name a file descriptor, got ${JSON.stringify(named)}`);
  // Programs a job starts through child_process with the default environment must not look for it.
  delete process.env[LAUNCH_FD_ENV];

  const { line, rest } = readLineSync(fd);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new AfterError('E_LAUNCH', 'the worker did not receive its credentials from `after start` (malformed hand-over)');
  }
  const values: Record<string, string> = {};
  for (const key of SECRET_ENV_KEYS) {
    const value = (parsed as Record<string, unknown> | null)?.[key];
    if (typeof value === 'string' && value) values[key] = value;
  }
  launchedBy = process.ppid;
  listenToLauncher(fd, rest);
  const received: NodeJS.ProcessEnv = { ...env, ...values };
  delete received[LAUNCH_FD_ENV];
  return received;
}

/** Reads up to the first newline, blocking: nothing else may run before the credentials are in. */
function readLineSync(fd: number): { line: string; rest: string } {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(4096);
  for (;;) {
    let read: number;
    try {
      read = fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      throw new AfterError('E_LAUNCH', `cannot read the credentials from \`after start\`: ${(err as Error).message}`);
    }
    if (read === 0) throw new AfterError('E_LAUNCH', '`after start` went away before handing the worker its credentials');
    chunks.push(Buffer.from(buffer.subarray(0, read)));
    const text = Buffer.concat(chunks).toString('utf8');
    const newline = text.indexOf('\n');
    if (newline >= 0) return { line: text.slice(0, newline), rest: text.slice(newline + 1) };
  }
}

/**
 * Requests from the launcher (one signal name a line) and this process's own signals, as one
 * source with duplicates merged: the stop requests (SIGINT, SIGTERM) and the steering ones
 * (SIGHUP, SIGUSR2). The end of the pipe ends the process.
 */
function listenToLauncher(fd: number, pending: string): void {
  const listeners = new Set<(signal: NodeJS.Signals) => void>();
  const steerListeners = new Set<(signal: NodeJS.Signals) => void>();
  let last: { from: 'launcher' | 'signal'; signal: NodeJS.Signals; at: number } | undefined;
  const deliver = (from: 'launcher' | 'signal', signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (last && last.from !== from && last.signal === signal && now - last.at < SAME_REQUEST_MS) {
      last = undefined;
      return;
    }
    last = { from, signal, at: now };
    if (STEER_SIGNALS.includes(signal)) {
      // Nobody listening (the worker is still starting): nothing to reload or reopen yet.
      for (const listener of [...steerListeners]) listener(signal);
      return;
    }
    // Nobody listening yet (or any more): what the signal's default action would have done.
    if (listeners.size === 0) process.exit(exitCodeOf(signal));
    for (const listener of [...listeners]) listener(signal);
  };
  // Always listening, so no signal ever ends the process by default.
  for (const signal of RELAYED_SIGNALS) process.on(signal, (received: NodeJS.Signals) => deliver('signal', received));

  const source: StopSignalSource = {
    on: (listener) => void listeners.add(listener),
    off: (listener) => void listeners.delete(listener),
  };
  setStopSignalSource(source);
  setSteerSignalSource({
    on: (listener) => void steerListeners.add(listener),
    off: (listener) => void steerListeners.delete(listener),
  });

  let buffered = pending;
  const take = (): void => {
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const name = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if ((RELAYED_SIGNALS as readonly string[]).includes(name)) deliver('launcher', name as NodeJS.Signals);
    }
  };
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  pipe.setEncoding('utf8');
  pipe.on('data', (text: string) => {
    buffered += text;
    take();
  });
  const launcherGone = (): void => {
    try {
      fs.writeSync(2, `after: the \`after start\` process (pid ${launchedBy}) that ran this worker ended; stopping at once\n`);
    } catch {
      // its terminal is gone too
    }
    process.exit(1);
  };
  pipe.on('end', launcherGone);
  pipe.on('error', launcherGone);
  // The pipe alone must not keep the worker alive once it has stopped.
  pipe.unref();
  // Requests sent before the pipe was read (a Ctrl-C during start) count too.
  setImmediate(take);
}

/**
 * `after start <name>` in the foreground (and, under pm2, the background worker, or its keeper
 * when it has credentials: worker-keeper.ts): the
 * credentials kept out of the worker's environment, the worker with its metrics endpoint
 * (metrics/worker-sidecars.ts, as the library's startWorker), SIGHUP and SIGUSR2 steering it,
 * and a clean stop on the first SIGINT or SIGTERM. Loaded only by `after start`: every other
 * command starts faster without the worker and all it imports.
 */
import { loadConfig } from '../config/load';
import { type AfterConfig } from '../config/types';
import { createLogger, detachConsole, workerLogFile } from '../log';
import { startWorkerWithSidecars } from '../metrics/worker-sidecars';
import type { Worker } from '../worker/worker';
import type { CliContext } from './context';
import { carriesCredentials, launcherPid, runWorkerInChild } from './credential-handover';
import { CREDENTIALS_SOCKET_ENV, receiveCredentials } from './credential-socket';
import { takeSecrets } from './secrets-file';
import { onSteerSignal, onStopSignal, terminalHungUp } from './signals';
import type { StartOptions } from './start-options';
import { keepWorker } from './worker-keeper';
import { steerBySignals } from './worker-reload';

type WorkerLogger = ReturnType<typeof createLogger>;

export async function runInForeground(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
  // Under pm2 (which sets pm_id) every console line would be written a second time into
  // pm2's own out file; the worker's log file already has it, and `after log` reads that.
  const underPm2 = process.env.pm_id !== undefined;
  // A worker an older After started under pm2 has AFTER_SECRETS_FILE instead of the socket.
  const socketPath = underPm2 ? ctx.env[CREDENTIALS_SOCKET_ENV] : undefined;
  const secretsPath = underPm2 ? ctx.env.AFTER_SECRETS_FILE : undefined;
  if (socketPath === undefined && secretsPath === undefined && launcherPid() === undefined && carriesCredentials(ctx.env)) {
    // The credentials must not be in the worker's own environment, where the programs its jobs
    // run could read them (/proc/<pid>/environ): the worker runs as a child without them.
    process.exitCode = await runWorkerInChild(ctx.env, ctx.binPath, process.argv.slice(2));
    return;
  }
  // A background worker's process with credentials receives them (below) and keeps the worker
  // running as its child (worker-keeper.ts), never in its own environment.
  const envWithoutFile = omit(omit(ctx.env, 'AFTER_SECRETS_FILE'), CREDENTIALS_SOCKET_ENV);
  const config = socketPath || secretsPath ? loadConfig(envWithoutFile) : ctx.config();
  const readConfig = (): AfterConfig => loadConfig(ctx.env);
  // SIGHUP and SIGUSR2 would end the process by default: until the worker runs, they change nothing.
  const untilStarted = onSteerSignal(() => undefined);
  const log = createLogger({ level: config.log.level, file: workerLogFile(config.log.dir, name), console: !underPm2 });
  const stop = onStopSignal();
  if (socketPath || secretsPath) {
    const waitFor = { worker: name, log, stopRequested: stop.requested };
    const received = socketPath ? receiveCredentials(socketPath, waitFor) : takeSecrets(secretsPath!, waitFor);
    const secrets = await received.catch(async (err: unknown) => {
      // Written to the worker's log, where `after log <name>` shows why it keeps restarting.
      log.error(`cannot start worker ${name}: ${(err as Error).message}`);
      stop.dispose();
      await closeLogger(log);
      throw err;
    });
    stop.dispose();
    untilStarted.dispose();
    if (!secrets) {
      log.info(`${stop.signal ?? 'stop'}: worker ${name} stopped while waiting for its credentials`);
    } else {
      process.exitCode = await keepWorker({ worker: name, values: secrets, env: envWithoutFile, binPath: ctx.binPath, argv: process.argv.slice(2), log });
    }
    await closeLogger(log);
    return;
  }
  try {
    await runWorker(config, readConfig, name, opts, log, stop, underPm2);
  } finally {
    untilStarted.dispose();
  }
}

async function runWorker(
  config: AfterConfig,
  readConfig: () => AfterConfig,
  name: string,
  opts: StartOptions,
  log: WorkerLogger,
  stop: ReturnType<typeof onStopSignal>,
  underPm2: boolean,
): Promise<void> {
  // A signal while the worker is still starting is honoured once it has started: startup
  // already claims and runs overdue tasks, which must be finished or handed back, not
  // dropped. A second signal still ends the process at once.
  let started = false;
  void stop.requested.then((signal) => {
    if (!started) log.info(`${signal}: worker ${name} will stop as soon as it has started (again to quit now)`);
  });
  let running: Awaited<ReturnType<typeof startWorkerWithSidecars>>;
  try {
    running = await startWorkerWithSidecars({
      config,
      name,
      log,
      metricsPort: opts.metricsPort,
      metricsHost: opts.metricsHost,
      metricsAllowedHosts: opts.metricsAllowedHost,
      // The process `after status` shows and a user signals: the launcher's, when one runs this worker.
      pid: launcherPid() ?? process.pid,
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.lease !== undefined ? { leaseMs: opts.lease } : {}),
      ...(opts.jobs !== undefined ? { jobsDir: opts.jobs } : {}),
    });
  } catch (err) {
    // In the foreground the error is the command's one line on stderr; under pm2 that line
    // goes to pm2's error file, so it is written to the worker's log too, where
    // `after log <name>` shows why the worker keeps restarting.
    if (underPm2) log.error(`cannot start worker ${name}: ${(err as Error).message}`);
    stop.dispose();
    await closeLogger(log);
    throw err;
  }
  started = true;
  const { worker, sidecars } = running;
  // SIGHUP: reload the configuration and jobs; SIGUSR2: open the log files again (worker-reload.ts).
  const steered = {
    worker,
    log,
    config,
    readConfig,
    ...(opts.jobs !== undefined ? { jobsDir: opts.jobs } : {}),
    // The stop a SIGTERM makes: finish or hand back what it holds (in a launched worker too).
    onTerminalHangUp: () => process.kill(process.pid, 'SIGTERM'),
  };
  const steering = steerBySignals(steered);
  try {
    await untilStopped(worker, name, stop, log, () => steered.config.worker.grace_ms);
  } finally {
    steering.dispose();
    await sidecars.close();
    stop.dispose();
    await closeLogger(log);
  }
}

/** Until the worker is done by itself, or a stop signal has made it finish its runs and stop. */
async function untilStopped(worker: Worker, name: string, stop: ReturnType<typeof onStopSignal>, log: WorkerLogger, graceMs: () => number): Promise<void> {
  const outcome = await Promise.race([worker.done.then(() => 'done' as const), stop.requested]);
  if (outcome === 'done') return;
  // Its terminal closed (the launcher relays that as a stop): writing there can crash Node.
  if (terminalHungUp()) detachConsole(log);
  const ms = graceMs();
  log.info(`${outcome}: stopping worker ${name} (runs may take up to ${ms} ms to finish)`);
  await worker.stop({ graceMs: ms });
  await worker.done;
  log.info(`worker ${name} stopped`);
}

function omit(env: NodeJS.ProcessEnv, key: string): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy[key];
  return copy;
}

/** Let winston flush the file transport before the process exits. */
function closeLogger(log: WorkerLogger): Promise<void> {
  return new Promise((resolve) => {
    log.on('finish', () => resolve());
    log.end();
  });
}

/**
 * `after start|stop|list|log|clean`: workers in the foreground, or in the background as pm2
 * processes (all pm2 calls are in pm2.ts).
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { loadConfig, type AfterConfig } from '../config';
import { AfterError } from '../errors';
import { assertNoJobProblems, jobsOptionsOf, loadJobs } from '../jobs/loader';
import { createLogger, detachConsole, workerLogFile } from '../log';
import { openWorkerSidecars } from '../metrics/worker-sidecars';
import type { Worker } from '../worker/worker';
import type { CliContext } from './context';
import { carriesCredentials, launcherPid, runWorkerInChild } from './credential-handover';
import { followFile, readLastLines } from './log-file';
import { absolutePath, integerIn } from './options';
import { formatDuration, formatTable } from './output';
import { flushLogs, listWorkers, pm2Home, startBackground, stopBackground, type WorkerProcess } from './pm2';
import { secretsFile, secretsToHand, takeSecretsIntoCustody, waitForSecretsTaken, waitingMarker, writeSecrets } from './secrets-file';
import { onSteerSignal, onStopSignal, terminalHungUp } from './signals';
import { steerBySignals } from './worker-reload';
import { checkWorkerName } from './worker-name';

interface StartOptions {
  background?: boolean;
  jobs?: string;
  concurrency?: number;
  lease?: number;
  metricsPort?: number;
  metricsHost?: string;
}

/** pm2 waits this much longer than the worker's own grace before it sends SIGKILL. */
const KILL_MARGIN_MS = 5000;
/** How long `after start -b` waits for a running worker to take the credentials handed to it. */
const HANDOVER_WAIT_MS = 5000;

export function registerWorkerCommands(program: Command, ctx: CliContext): void {
  program
    .command('start <name>')
    .description('start a worker: run the tasks whose "worker" is <name> (Ctrl-C stops it; -b: in the background)')
    .option('-b, --background', 'run under pm2 (restarted if it crashes); see `after list`, `after log`, `after stop`')
    .option('--jobs <dir>', 'jobs folder (default: jobs in config, or AFTER_JOBS)', absolutePath)
    .option('--concurrency <n>', 'runs at once (default: worker.concurrency in config)', integerIn(1, 10_000))
    .option('--lease <ms>', 'how long a claim holds before another instance may take a run over', integerIn(1000, 86_400_000))
    .option('--metrics-port <n>', 'serve Prometheus metrics at http://127.0.0.1:<n>/metrics (0: any free port)', integerIn(0, 65535))
    .option('--metrics-host <host>', 'address the metrics endpoint binds (default 127.0.0.1)')
    .action(async (name: string, opts: StartOptions) => {
      checkWorkerName(name);
      if (opts.background) await startInBackground(ctx, name, opts);
      else await runInForeground(ctx, name, opts);
    });

  program
    .command('stop <name>')
    .description('stop a background worker (it finishes its runs first) and remove it from pm2')
    .action(async (name: string) => {
      checkWorkerName(name);
      const config = ctx.config();
      const report = await stopBackground(pm2Home(config.home), name);
      // The worker wrote its credentials back as it exited; nothing will restart it now.
      fs.rmSync(secretsFile(config.home, name), { force: true });
      fs.rmSync(waitingMarker(secretsFile(config.home, name)), { force: true });
      ctx.out.line(`worker ${name} stopped`);
      if (report.daemonStopped) ctx.out.line('no background workers left; pm2 daemon stopped');
    });

  program
    .command('list')
    .description('list background workers with state, pid, uptime and restarts')
    .action(async () => {
      const workers = await listWorkers(pm2Home(ctx.config().home));
      if (workers.length === 0) {
        ctx.out.line('no workers');
        return;
      }
      const rows = workers.map((w) => [
        w.worker,
        w.state,
        w.pid === null ? '-' : String(w.pid),
        w.uptimeMs === null ? '-' : formatDuration(w.uptimeMs),
        String(w.restarts),
      ]);
      for (const line of formatTable(['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS'], rows)) ctx.out.line(line);
    });

  program
    .command('log <name>')
    .description("show the end of a worker's log (-f: keep following it)")
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many lines from the end', integerIn(0, 1_000_000), 50)
    .action(async (name: string, opts: { follow?: boolean; lines: number }) => {
      const file = existingLogFile(ctx.config(), checkWorkerName(name));
      const { lines, size } = readLastLines(file, opts.lines);
      for (const line of lines) ctx.out.line(line);
      if (!opts.follow) return;
      const stop = onStopSignal();
      const follower = followFile(file, size, (line) => ctx.out.line(line));
      await stop.requested;
      follower.stop();
      stop.dispose();
    });

  program
    .command('clean <name>')
    .description("empty a worker's log (and pm2's output files of it)")
    .action(async (name: string) => {
      const config = ctx.config();
      const file = existingLogFile(config, checkWorkerName(name));
      // Truncate in place: a running worker keeps its file open in append mode, so its next
      // line lands at the new end rather than in an unlinked file.
      fs.truncateSync(file, 0);
      const flushed = await flushLogs(pm2Home(config.home), name);
      ctx.out.line(`cleared ${file}${flushed ? ' and the pm2 output of after-' + name : ''}`);
    });
}

async function runInForeground(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
  // Under pm2 (which sets pm_id) every console line would be written a second time into
  // pm2's own out file; the worker's log file already has it, and `after log` reads that.
  const underPm2 = process.env.pm_id !== undefined;
  const secretsPath = underPm2 ? ctx.env.AFTER_SECRETS_FILE : undefined;
  if (secretsPath === undefined && launcherPid() === undefined && carriesCredentials(ctx.env)) {
    // The credentials must not be in the worker's own environment, where the programs its jobs
    // run could read them (/proc/<pid>/environ): the worker runs as a child without them.
    process.exitCode = await runWorkerInChild(ctx.env, ctx.binPath, process.argv.slice(2));
    return;
  }
  // A background worker reads its secrets file itself (below), and its configuration with them.
  const envWithoutFile = omit(ctx.env, 'AFTER_SECRETS_FILE');
  let config = secretsPath ? loadConfig(envWithoutFile) : ctx.config();
  let readConfig = (): AfterConfig => loadConfig(ctx.env);
  // SIGHUP and SIGUSR2 would end the process by default: until the worker runs, they change nothing.
  const untilStarted = onSteerSignal(() => undefined);
  const log = createLogger({ level: config.log.level, file: workerLogFile(config.log.dir, name), console: !underPm2 });
  const stop = onStopSignal();
  if (secretsPath) {
    const secrets = await takeSecretsIntoCustody(secretsPath, { worker: name, log, stopRequested: stop.requested }).catch(async (err) => {
      // Written to the worker's log, where `after log <name>` shows why it keeps restarting.
      log.error(`cannot start worker ${name}: ${(err as Error).message}`);
      stop.dispose();
      await closeLogger(log);
      throw err;
    });
    if (!secrets) {
      log.info(`${stop.signal ?? 'stop'}: worker ${name} stopped while waiting for its credentials`);
      stop.dispose();
      await closeLogger(log);
      return;
    }
    const withSecrets = { ...envWithoutFile, ...secrets.values };
    readConfig = () => loadConfig(withSecrets);
    config = readConfig();
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
  log: ReturnType<typeof createLogger>,
  stop: ReturnType<typeof onStopSignal>,
  underPm2: boolean,
): Promise<void> {
  // Loaded here, not at the top: only this command needs the worker (and all it imports),
  // and every other command starts faster without it.
  const { startWorker } = require('../worker/start') as typeof import('../worker/start');
  // A signal while the worker is still starting is honoured once it has started: startup
  // already claims and runs overdue tasks, which must be finished or handed back, not
  // dropped. A second signal still ends the process at once.
  let started = false;
  void stop.requested.then((signal) => {
    if (!started) log.info(`${signal}: worker ${name} will stop as soon as it has started (again to quit now)`);
  });
  let worker: Worker;
  // The metrics endpoint.
  const sidecars = await openWorkerSidecars({ metricsPort: opts.metricsPort, metricsHost: opts.metricsHost, log }).catch(async (err) => {
    stop.dispose();
    await closeLogger(log);
    throw err;
  });
  try {
    worker = await startWorker({
      config,
      name,
      log,
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
    await sidecars.close();
    stop.dispose();
    await closeLogger(log);
    throw err;
  }
  started = true;
  sidecars.attach(worker);
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
    const outcome = await Promise.race([worker.done.then(() => 'done' as const), stop.requested]);
    if (outcome !== 'done') {
      // Its terminal closed (the launcher relays that as a stop): writing there can crash Node.
      if (terminalHungUp()) detachConsole(log);
      const graceMs = steered.config.worker.grace_ms;
      log.info(`${outcome}: stopping worker ${name} (runs may take up to ${graceMs} ms to finish)`);
      await worker.stop({ graceMs });
      await worker.done;
      log.info(`worker ${name} stopped`);
    }
  } finally {
    steering.dispose();
    await sidecars.close();
    stop.dispose();
    await closeLogger(log);
  }
}

function omit(env: NodeJS.ProcessEnv, key: string): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy[key];
  return copy;
}

/** Let winston flush the file transport before the process exits. */
function closeLogger(log: ReturnType<typeof createLogger>): Promise<void> {
  return new Promise((resolve) => {
    log.on('finish', () => resolve());
    log.end();
  });
}

async function startInBackground(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
  const config = ctx.config();
  // The one start failure a background worker cannot recover from: refuse it here, in one
  // line, instead of letting pm2 restart a worker that can never start.
  assertNoJobProblems(await loadJobs(opts.jobs ?? config.jobs, jobsOptionsOf(config)));
  // Read before pm2 loads: it removes the credentials from this process's environment.
  const secretsSource = { ...ctx.env };
  const handsSecrets = Object.keys(secretsToHand(secretsSource)).length > 0;
  const home = pm2Home(config.home);

  // A worker waiting for the credentials it lost (killed with SIGKILL, restarted by pm2 with no
  // file to read) gets them; any other running worker is left alone (startBackground refuses).
  const waiting = handsSecrets && fs.existsSync(waitingMarker(secretsFile(config.home, name)));
  const running = waiting ? (await listWorkers(home)).find((w) => w.worker === name && w.state === 'online') : undefined;
  if (running) {
    await handCredentialsAgain(ctx, config, name, running, secretsSource);
    return;
  }

  const args = ['start', name];
  if (opts.jobs !== undefined) args.push('--jobs', opts.jobs);
  if (opts.concurrency !== undefined) args.push('--concurrency', String(opts.concurrency));
  if (opts.lease !== undefined) args.push('--lease', String(opts.lease));
  if (opts.metricsPort !== undefined) args.push('--metrics-port', String(opts.metricsPort));
  if (opts.metricsHost !== undefined) args.push('--metrics-host', opts.metricsHost);

  const env = (): Record<string, string> => {
    const env: Record<string, string> = { AFTER_HOME: config.home };
    // Only when there is something to hand over: a worker told of a file waits for it.
    if (handsSecrets) env.AFTER_SECRETS_FILE = writeSecrets(config.home, name, secretsSource);
    if (config.file) env.AFTER_CONFIG = config.file;
    if (ctx.env.AFTER_JOBS) env.AFTER_JOBS = config.jobs;
    return env;
  };

  const started = await startBackground(home, {
    worker: name,
    script: ctx.binPath,
    args,
    cwd: process.cwd(),
    env,
    killTimeoutMs: config.worker.grace_ms + KILL_MARGIN_MS,
  });
  const pid = started.pid === null ? '' : `, pid ${started.pid}`;
  ctx.out.line(`worker ${name} started in the background (${started.state}${pid}); log: ${workerLogFile(config.log.dir, name)}`);
}

/** `after start <name> -b` on a worker waiting for its credentials: hands them over. */
async function handCredentialsAgain(ctx: CliContext, config: AfterConfig, name: string, running: WorkerProcess, env: NodeJS.ProcessEnv): Promise<void> {
  const file = writeSecrets(config.home, name, env);
  const pid = running.pid === null ? '' : `, pid ${running.pid}`;
  if (await waitForSecretsTaken(file, HANDOVER_WAIT_MS)) {
    ctx.out.line(`worker ${name} was waiting for its credentials (${running.state}${pid}); it has taken them`);
  } else {
    ctx.out.line(`worker ${name} was waiting for its credentials (${running.state}${pid}); they are in ${file} for it to take (see 'after log ${name}')`);
  }
}

function existingLogFile(config: AfterConfig, name: string): string {
  const file = workerLogFile(config.log.dir, name);
  if (!fs.existsSync(file)) throw new AfterError('E_NO_LOG', `no log for worker ${name} (${file})`);
  return file;
}

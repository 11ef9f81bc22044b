/**
 * `after start <name> -b`: the worker as a pm2 process running `after start <name>` (all pm2
 * calls are in pm2.ts). Credentials reach it through a Unix socket its process listens on
 * (credential-socket.ts), never through pm2's environment or a file.
 */
import { assertNoJobProblems, jobsOptionsOf, loadJobs } from '../jobs/loader';
import { workerLogFile } from '../log';
import type { CliContext } from './context';
import { CREDENTIALS_SOCKET_ENV, credentialSocketPath, sendCredentials } from './credential-socket';
import { listWorkers, pm2Home, startBackground, type WorkerProcess } from './pm2';
import { secretsToHand } from './secrets-file';
import type { StartOptions } from './start-options';

/** pm2 waits this much longer than the worker's own grace before it sends SIGKILL. */
const KILL_MARGIN_MS = 5000;
/** How long `after start -b` waits for the worker's process to take its credentials. */
const HANDOVER_WAIT_MS = 15_000;
/** How long it tries a running worker's socket: one that listens answers at once. */
const RUNNING_HANDOVER_WAIT_MS = 1000;

export async function startInBackground(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
  const config = ctx.config();
  // The one start failure a background worker cannot recover from: refuse it here, in one
  // line, instead of letting pm2 restart a worker that can never start.
  assertNoJobProblems(await loadJobs(opts.jobs ?? config.jobs, jobsOptionsOf(config)));
  // Read before pm2 loads: it removes the credentials from this process's environment.
  const secrets = secretsToHand({ ...ctx.env });
  const handsSecrets = Object.keys(secrets).length > 0;
  const socket = handsSecrets ? credentialSocketPath(config.home, name) : undefined;
  const home = pm2Home(config.home);

  // A worker waiting for the credentials it lost (pm2 started its process again) gets them;
  // any other running worker is left alone (startBackground refuses).
  const running = socket ? (await listWorkers(home)).find((w) => w.worker === name && w.state === 'online') : undefined;
  if (running && socket && (await sendCredentials(socket, secrets, RUNNING_HANDOVER_WAIT_MS))) {
    ctx.out.line(`worker ${name} was waiting for its credentials (${describe(running)}); it has taken them`);
    return;
  }

  const args = ['start', name];
  if (opts.jobs !== undefined) args.push('--jobs', opts.jobs);
  if (opts.concurrency !== undefined) args.push('--concurrency', String(opts.concurrency));
  if (opts.lease !== undefined) args.push('--lease', String(opts.lease));
  if (opts.metricsPort !== undefined) args.push('--metrics-port', String(opts.metricsPort));
  if (opts.metricsHost !== undefined) args.push('--metrics-host', opts.metricsHost);
  for (const name of opts.metricsAllowedHost ?? []) args.push('--metrics-allowed-host', name);

  const env = (): Record<string, string> => {
    const env: Record<string, string> = { AFTER_HOME: config.home };
    // Only when there is something to hand over: a worker told of a socket waits on it.
    if (socket) env[CREDENTIALS_SOCKET_ENV] = socket;
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
  const log = workerLogFile(config.log.dir, name);
  if (socket && !(await sendCredentials(socket, secrets, HANDOVER_WAIT_MS))) {
    ctx.out.line(`worker ${name} started in the background (${describe(started)}) but did not take its credentials within ${HANDOVER_WAIT_MS / 1000} s; see 'after log ${name}' (${log})`);
    process.exitCode = 1;
    return;
  }
  ctx.out.line(`worker ${name} started in the background (${describe(started)}); log: ${log}`);
}

function describe(worker: WorkerProcess): string {
  return `${worker.state}${worker.pid === null ? '' : `, pid ${worker.pid}`}`;
}

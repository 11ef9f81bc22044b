/**
 * `after start <name> -b`: the worker as a pm2 process running `after start <name>` (all pm2
 * calls are in pm2.ts). Credentials reach it through a secrets file it takes into custody,
 * never through pm2's environment (secrets-file.ts).
 */
import * as fs from 'node:fs';
import type { AfterConfig } from '../config';
import { assertNoJobProblems, jobsOptionsOf, loadJobs } from '../jobs/loader';
import { workerLogFile } from '../log';
import type { CliContext } from './context';
import { listWorkers, pm2Home, startBackground, type WorkerProcess } from './pm2';
import { secretsFile, secretsToHand, waitForSecretsTaken, waitingMarker, writeSecrets } from './secrets-file';
import type { StartOptions } from './worker-commands';

/** pm2 waits this much longer than the worker's own grace before it sends SIGKILL. */
const KILL_MARGIN_MS = 5000;
/** How long `after start -b` waits for a running worker to take the credentials handed to it. */
const HANDOVER_WAIT_MS = 5000;

export async function startInBackground(ctx: CliContext, name: string, opts: StartOptions): Promise<void> {
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
  for (const name of opts.metricsAllowedHost ?? []) args.push('--metrics-allowed-host', name);

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

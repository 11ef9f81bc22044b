/**
 * A background worker's keeper: pm2's process for `after start <name> -b` when the worker has
 * credentials. It holds them in memory and runs the worker as its child, handing them over
 * through a pipe (credential-handover.ts launchWorker), so neither the worker's environment nor
 * any file holds them while it runs.
 *
 * When the worker ends without being asked to (a crash, or a signal a program of a run sent
 * it), the keeper starts it again itself, with the same credentials, after a pause that grows
 * while it keeps ending (1 s, doubling, at most 30 s; back to 1 s after a minute of running).
 * pm2 used to restart the worker, which therefore wrote its credentials back to a file as it
 * exited; a program that signalled the worker and watched that path read the password
 * (issue 19, row 2). A stop (SIGINT, SIGTERM: `after stop`, pm2) and SIGHUP and SIGUSR2 are
 * relayed to the worker; after a stop the keeper exits with the worker's code and writes
 * nothing: the next keeper pm2 starts waits for `after start <name> -b` to hand them over again.
 */
import { reopenLogFiles, type Logger } from '../log';
import type { SecretEnvValues } from '../config/secret-env';
import { launchWorker, RELAYED_SIGNALS } from './credential-handover';
import { exitCodeOf, STOP_SIGNALS } from './signals';

/** The first pause before starting a worker that ended by itself again, and the longest. */
const FIRST_RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that ran this long before it ended starts again after the first pause. */
const STABLE_RUN_MS = 60_000;

export interface KeeperOptions {
  worker: string;
  values: SecretEnvValues;
  /** The environment the worker is started with (its credentials are taken out of it). */
  env: NodeJS.ProcessEnv;
  binPath: string;
  argv: readonly string[];
  log: Logger;
}

/** Runs the worker until it is asked to stop; resolves with the exit code to exit with. */
export async function keepWorker(options: KeeperOptions): Promise<number> {
  const { worker: name, log } = options;
  let stopping: NodeJS.Signals | undefined;
  let current: ReturnType<typeof launchWorker> | undefined;
  let wakeFromPause: () => void = () => undefined;
  const relay = (signal: NodeJS.Signals): void => {
    if (STOP_SIGNALS.includes(signal)) {
      // A second stop while the worker stops: what a second Ctrl-C does to any foreground command.
      if (stopping !== undefined) process.exit(exitCodeOf(signal));
      stopping = signal;
      wakeFromPause();
    }
    // The keeper writes to the worker's log file too: after logrotate moved it, both open it again.
    if (signal === 'SIGUSR2') reopenLogFiles(log);
    current?.relay(signal);
  };
  for (const signal of RELAYED_SIGNALS) process.on(signal, relay);
  let delayMs = FIRST_RESTART_DELAY_MS;
  try {
    for (;;) {
      const startedAt = Date.now();
      current = launchWorker(options.values, options.env, options.binPath, options.argv);
      const { code, signal } = await current.exited;
      current = undefined;
      if (stopping !== undefined) return signal !== null ? exitCodeOf(signal) : (code ?? 1);
      if (Date.now() - startedAt >= STABLE_RUN_MS) delayMs = FIRST_RESTART_DELAY_MS;
      const how = signal !== null ? `was ended by ${signal}` : `exited with code ${code}`;
      log.warn(`worker ${name} ${how} without being asked to stop; starting it again in ${delayMs} ms, with the credentials this process holds`);
      await new Promise<void>((resolve) => {
        wakeFromPause = resolve;
        setTimeout(resolve, delayMs);
      });
      if (stopping !== undefined) return exitCodeOf(stopping);
      delayMs = Math.min(delayMs * 2, MAX_RESTART_DELAY_MS);
    }
  } finally {
    for (const signal of RELAYED_SIGNALS) process.off(signal, relay);
  }
}

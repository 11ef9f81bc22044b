/**
 * A running worker steered by signals (PerfectSched's HUP and USR2):
 *
 * - SIGHUP reloads the configuration and the jobs folder, keeping every task the instance holds
 *   and every run in progress. New job code runs from the next run on; a folder with a broken
 *   job (or a config file that no longer reads) is refused with a log line naming the problem,
 *   and the jobs loaded before stay. Settings that only a restart can change (the database, the
 *   lease, the horizon, the feed heartbeat, the log folder) are named in a warning and kept.
 * - SIGUSR2 opens the log files again, so `logrotate` can move them away and signal the worker
 *   (a `postrotate` script: `kill -USR2 <pid>`, or `after reload <name> --logs`).
 *
 * `after reload <name>` sends SIGHUP to a background worker; a foreground worker run through the
 * credential launcher gets both signals relayed by it (credential-handover.ts). The SIGHUP a
 * closing terminal sends still stops a foreground worker, as it always did.
 */
import type { AfterConfig } from '../config/types';
import { toError } from '../errors';
import { JobsInvalidError, assertNoJobProblems, jobsOptionsOf, loadJobs } from '../jobs/loader';
import { detachConsole, reopenLogFiles, type Logger } from '../log';
import type { Worker } from '../worker/worker';
import { onSteerSignal, terminalHungUp } from './signals';

export interface SteeredWorker {
  worker: Worker;
  log: Logger;
  /** The configuration in use; replaced by each reload. */
  config: AfterConfig;
  /** The configuration as it reads now: config.json, the environment and the credentials it started with. */
  readConfig(): AfterConfig;
  /** `--jobs` given at start: it wins over the config's `jobs` at every reload too. */
  jobsDir?: string;
  /** The SIGHUP came from the terminal closing: stop rather than reload. */
  onTerminalHangUp(): void;
}

/**
 * Settings read once, when the worker starts. A reload keeps them and names the ones that
 * changed. (Credentials are compared, never printed: the warning names the setting only.)
 */
const RESTART_ONLY: ReadonlyArray<[string, (config: AfterConfig) => unknown]> = [
  ['couchdb.url', (c) => c.couchdb.url],
  ['couchdb.db', (c) => c.couchdb.db],
  ['couchdb.username', (c) => c.couchdb.username],
  ['couchdb.password', (c) => c.couchdb.password],
  ['worker.lease_ms', (c) => c.worker.lease_ms],
  ['worker.claim_grace_ms', (c) => c.worker.claim_grace_ms],
  ['worker.horizon_ms', (c) => c.worker.horizon_ms],
  ['worker.heartbeat_ms', (c) => c.worker.heartbeat_ms],
  ['log.dir', (c) => c.log.dir],
];

/**
 * Reload `steered` from its configuration and jobs folder as they are now. Resolves with the
 * configuration now in use (the old one when the reload was refused); never throws.
 */
export async function reloadWorker(steered: SteeredWorker, signal = 'SIGHUP'): Promise<AfterConfig> {
  const { log, config: current } = steered;
  let fresh: AfterConfig;
  try {
    fresh = steered.readConfig();
  } catch (err) {
    log.error(`${signal}: reload refused, the configuration does not read: ${toError(err).message}; the worker keeps its configuration and jobs`);
    return current;
  }
  const jobsDir = steered.jobsDir ?? fresh.jobs;
  let jobs: Awaited<ReturnType<typeof loadJobs>>;
  try {
    jobs = await loadJobs(jobsDir, { ...jobsOptionsOf(fresh), reload: true });
    assertNoJobProblems(jobs);
  } catch (err) {
    const why = err instanceof JobsInvalidError ? err.message : `jobs folder ${jobsDir}: ${toError(err).message}`;
    log.error(`${signal}: reload refused: ${why}; the jobs loaded before stay`);
    return current;
  }
  const needRestart = RESTART_ONLY.filter(([, read]) => read(fresh) !== read(current)).map(([name]) => name);
  if (needRestart.length > 0) log.warn(`${signal}: ${needRestart.join(', ')} changed; that takes a restart of the worker (kept as they were)`);
  const config = keepRestartOnly(fresh, current);
  log.level = config.log.level;
  steered.worker.reload({ config, jobs });
  const names = jobs.names();
  log.info(`${signal}: reloaded ${names.length} jobs from ${jobs.dir} (${names.join(', ')}); new runs use them, runs in progress finish as they started`);
  return config;
}

/** `fresh` with the settings only a restart changes taken from `current`. */
export function keepRestartOnly(fresh: AfterConfig, current: AfterConfig): AfterConfig {
  return {
    ...fresh,
    couchdb: current.couchdb,
    worker: {
      ...fresh.worker,
      lease_ms: current.worker.lease_ms,
      claim_grace_ms: current.worker.claim_grace_ms,
      horizon_ms: current.worker.horizon_ms,
      heartbeat_ms: current.worker.heartbeat_ms,
    },
    log: { ...fresh.log, dir: current.log.dir },
    home: current.home,
  };
}

/**
 * Listen to SIGHUP and SIGUSR2 for `steered` until disposed. Reloads never overlap: a SIGHUP
 * during a reload makes one more once it is done.
 */
export function steerBySignals(steered: SteeredWorker): { dispose(): void } {
  let reloading: Promise<void> | undefined;
  let again = false;
  const reload = (signal: NodeJS.Signals): void => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = reloadWorker(steered, signal)
      .then((config) => {
        steered.config = config;
      })
      .finally(() => {
        reloading = undefined;
        if (again) {
          again = false;
          reload(signal);
        }
      });
  };
  return onSteerSignal((signal) => {
    if (signal === 'SIGHUP' && terminalHungUp()) {
      detachConsole(steered.log);
      steered.log.info('SIGHUP: the terminal of this worker was closed; stopping (logging to its file only)');
      steered.onTerminalHangUp();
    } else if (signal === 'SIGHUP') reload(signal);
    else if (signal === 'SIGUSR2') {
      const files = reopenLogFiles(steered.log);
      steered.log.info(`${signal}: log files opened again (${files.length === 0 ? 'none: this worker logs to the console only' : files.join(', ')})`);
    }
  });
}

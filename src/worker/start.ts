/** Starting a worker instance: load its jobs, connect (waiting for the database), follow. */
import { backoffMs, delay } from '../clock';
import type { AfterConfig } from '../config/types';
import { AfterError, CouchRequestError } from '../errors';
import { jobsOptionsOf, loadJobs } from '../jobs/loader';
import type { Logger } from '../log';
import { createStore } from '../store/for-workers/couch-store';
import type { TaskStore } from '../store/types';
import { Worker, type WorkerOptions } from './worker';
import { logWorkerEvents } from './events';

/** What a caller hooks onto a worker before it starts (its first runs may come during start). */
export interface StartHooks {
  /** The worker made, not started yet: follow its events from here to miss none. */
  created?(worker: Worker): void;
}

export async function startWorker(options: WorkerOptions, hooks: StartHooks = {}): Promise<Worker> {
  const { config, log } = options;
  const jobsDir = options.jobsDir ?? config.jobs;
  const jobs = options.jobs ?? (await loadJobs(jobsDir, jobsOptionsOf(config)));
  if (jobs.problems.length > 0) {
    throw new AfterError('E_JOBS', `jobs folder ${jobsDir} has problems: ${jobs.problems.map((p) => p.message).join('; ')}`);
  }
  const store = options.store ?? (await connectWithRetry(config, log));
  const worker = new Worker(options, store, jobs);
  logWorkerEvents(worker.events, log);
  hooks.created?.(worker);
  try {
    await worker.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  log.info(
    `worker ${options.name} ready (instance ${worker.instance}, ${store.server.kind} ${store.server.version}, ` +
      `${jobs.names().length} jobs, concurrency ${options.concurrency ?? config.worker.concurrency})`,
  );
  return worker;
}

async function connectWithRetry(config: AfterConfig, log: Logger): Promise<TaskStore> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await createStore(config, { log, retry: 'forever' });
    } catch (err) {
      if (!(err instanceof CouchRequestError) || !err.transient) throw err;
      const wait = backoffMs(attempt, 500, 10_000);
      log.warn(`${err.message}; retrying in ${Math.round(wait / 100) / 10} s`);
      await delay(wait);
    }
  }
}

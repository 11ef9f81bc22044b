/**
 * A worker instance with what runs beside it: with a metrics port, its `/metrics` endpoint; and
 * unless `stats.record` is false, the recorder of its run figures for the dashboard's charts
 * (run-stats-recorder.ts, its own connection, at most one write a minute).
 * `after start` and the library's startWorker both start a worker through startWorkerWithSidecars.
 * The endpoint is opened before the worker starts (a taken metrics port is an error before any
 * task is claimed) and attached once it has. (The instance's heartbeat document is the worker's
 * own: its control link writes it, since the instances split the tasks by it.)
 */
import type { Logger } from '../log';
import { openConnection } from '../store/connection';
import { startWorker } from '../worker/start';
import type { Worker, WorkerOptions } from '../worker/worker';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { startRunStatsRecorder } from './run-stats-recorder';
import { createWorkerMetrics, type MeteredWorker, type WorkerMetrics } from './worker-metrics';

export interface SidecarOptions {
  /** Serve `/metrics` on this port (0: any free port). None when undefined. */
  metricsPort?: number;
  /** @default "127.0.0.1" */
  metricsHost?: string;
  /** `Host` names a scraper may use beside the loopback names and metricsHost. @default [] */
  metricsAllowedHosts?: readonly string[];
  log: Logger;
}

export interface WorkerSidecars {
  /** The metrics URL, when serving. */
  readonly metricsUrl: string | undefined;
  attach(worker: MeteredWorker): void;
  /** Stop serving metrics; a second call waits for the first. */
  close(): Promise<void>;
}

export async function openWorkerSidecars(options: SidecarOptions): Promise<WorkerSidecars> {
  const server: MetricsServer | undefined =
    options.metricsPort === undefined ? undefined : await startMetricsServer({ port: options.metricsPort, host: options.metricsHost, allowedHosts: options.metricsAllowedHosts });
  let metrics: WorkerMetrics | undefined;
  let closed: Promise<void> | undefined;
  return {
    metricsUrl: server?.url,
    attach(worker) {
      if (!server) return;
      metrics = createWorkerMetrics(worker);
      server.use(metrics.registry);
      options.log.info(`metrics of worker ${worker.name} at ${server.url}`);
    },
    close() {
      closed ??= (async () => {
        metrics?.detach();
        await server?.close();
      })();
      return closed;
    },
  };
}

/**
 * Start a worker instance (worker/start.ts) with its sidecars, which close by themselves once
 * the worker is done (or at once when it cannot start).
 */
export async function startWorkerWithSidecars(options: WorkerOptions & Omit<SidecarOptions, 'log'>): Promise<{ worker: Worker; sidecars: WorkerSidecars }> {
  const { metricsPort, metricsHost, metricsAllowedHosts, ...workerOptions } = options;
  const sidecars = await openWorkerSidecars({ metricsPort, metricsHost, metricsAllowedHosts, log: options.log });
  // Attached before the worker starts: overdue tasks found at start run during start().
  let stopRecording: () => Promise<void> = async () => undefined;
  let worker: Worker;
  try {
    worker = await startWorker(workerOptions, {
      created: (made) => {
        sidecars.attach(made);
        stopRecording = recordRunFigures(made, workerOptions);
      },
    });
  } catch (err) {
    await Promise.all([sidecars.close(), stopRecording()]);
    throw err;
  }
  const close = sidecars.close;
  let closed: Promise<void> | undefined;
  const withRecorder: WorkerSidecars = {
    metricsUrl: sidecars.metricsUrl,
    attach: (w) => sidecars.attach(w),
    close: () => (closed ??= Promise.all([close(), stopRecording()]).then(() => undefined)),
  };
  void worker.done.then(() => withRecorder.close());
  return { worker, sidecars: withRecorder };
}

/** The run figures recorder of a worker, with a connection of its own; returns its stop. */
function recordRunFigures(worker: Worker, options: WorkerOptions): () => Promise<void> {
  if (!options.config.stats.record) return async () => undefined;
  const conn = openConnection(options.config, { log: options.log });
  const recorder = startRunStatsRecorder(worker, { conn, log: options.log, retentionDays: options.config.stats.retention_days, flushEveryMs: options.config.stats.flush_ms });
  return async () => {
    await recorder.stop().catch((err: Error) => options.log.debug(`last run figures not written: ${err.message}`));
    conn.close();
  };
}

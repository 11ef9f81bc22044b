/**
 * A worker instance with what runs beside it: with a metrics port, its `/metrics` endpoint.
 * `after start` and the library's startWorker both start a worker through startWorkerWithSidecars.
 * The endpoint is opened before the worker starts (a taken metrics port is an error before any
 * task is claimed) and attached once it has. (The instance's heartbeat document is the worker's
 * own: its control link writes it, since the instances split the tasks by it.)
 */
import type { Logger } from '../log';
import { startWorker } from '../worker/start';
import type { Worker, WorkerOptions } from '../worker/worker';
import { startMetricsServer, type MetricsServer } from './metrics-server';
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
  let worker: Worker;
  try {
    worker = await startWorker(workerOptions);
  } catch (err) {
    await sidecars.close();
    throw err;
  }
  sidecars.attach(worker);
  void worker.done.then(() => sidecars.close());
  return { worker, sidecars };
}

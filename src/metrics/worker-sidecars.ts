/**
 * What `after start` (and the library's startWorker) runs beside a worker: with a metrics port
 * its `/metrics` endpoint. Opened before the worker starts (a taken metrics port is an error
 * before any task is claimed), attached once it has. (The instance's heartbeat document is the
 * worker's own: its control link writes it, since the instances split the tasks by it.)
 */
import type { Logger } from '../log';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { createWorkerMetrics, type MeteredWorker, type WorkerMetrics } from './worker-metrics';

export interface SidecarOptions {
  /** Serve `/metrics` on this port (0: any free port). None when undefined. */
  metricsPort?: number;
  /** @default "127.0.0.1" */
  metricsHost?: string;
  log: Logger;
}

export interface WorkerSidecars {
  /** The metrics URL, when serving. */
  readonly metricsUrl: string | undefined;
  attach(worker: MeteredWorker): void;
  /** Stop serving metrics. */
  close(): Promise<void>;
}

export async function openWorkerSidecars(options: SidecarOptions): Promise<WorkerSidecars> {
  const server: MetricsServer | undefined =
    options.metricsPort === undefined ? undefined : await startMetricsServer({ port: options.metricsPort, host: options.metricsHost });
  let metrics: WorkerMetrics | undefined;
  return {
    metricsUrl: server?.url,
    attach(worker) {
      if (!server) return;
      metrics = createWorkerMetrics(worker);
      server.use(metrics.registry);
      options.log.info(`metrics of worker ${worker.name} at ${server.url}`);
    },
    async close() {
      metrics?.detach();
      await server?.close();
    },
  };
}

/**
 * What `after start` (and the library's startWorker) runs beside a worker: its instance
 * heartbeat document, and with a metrics port its `/metrics` endpoint. Opened before the worker
 * starts (a taken metrics port is an error before any task is claimed), attached once it has.
 */
import type { AfterConfig } from '../config';
import type { Logger } from '../log';
import { openConnection } from '../store/connection';
import { startInstanceHeartbeat, type InstanceHeartbeat, type InstanceSource } from './instance-heartbeat';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { createWorkerMetrics, type MeteredWorker, type WorkerMetrics } from './worker-metrics';

export interface SidecarOptions {
  /** Serve `/metrics` on this port (0: any free port). None when undefined. */
  metricsPort?: number;
  /** @default "127.0.0.1" */
  metricsHost?: string;
  /** Write the instance heartbeat document. @default true */
  heartbeat?: boolean;
  /** The pid the heartbeat shows: the process to signal to stop this instance. @default process.pid */
  pid?: number;
  log: Logger;
}

export interface WorkerSidecars {
  /** The metrics URL, when serving. */
  readonly metricsUrl: string | undefined;
  attach(worker: MeteredWorker & InstanceSource): void;
  /** Delete the heartbeat document, stop serving metrics. */
  close(): Promise<void>;
}

export async function openWorkerSidecars(config: AfterConfig, options: SidecarOptions): Promise<WorkerSidecars> {
  const server: MetricsServer | undefined =
    options.metricsPort === undefined ? undefined : await startMetricsServer({ port: options.metricsPort, host: options.metricsHost });
  const conn = options.heartbeat === false ? undefined : openConnection(config, { log: options.log });
  let heartbeat: InstanceHeartbeat | undefined;
  let metrics: WorkerMetrics | undefined;
  return {
    metricsUrl: server?.url,
    attach(worker) {
      if (server) {
        metrics = createWorkerMetrics(worker);
        server.use(metrics.registry);
        options.log.info(`metrics of worker ${worker.name} at ${server.url}`);
      }
      if (conn) heartbeat = startInstanceHeartbeat(conn, worker, { log: options.log, ...(options.pid !== undefined ? { pid: options.pid } : {}) });
    },
    async close() {
      metrics?.detach();
      await heartbeat?.stop();
      conn?.close();
      await server?.close();
    },
  };
}

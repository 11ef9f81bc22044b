/** What `after start` is given, shared by its foreground and background halves. */
import type { SidecarOptions } from '../metrics/worker-sidecars';
import type { WorkerOptions } from '../worker/worker';

/** The options of `after start`, as commander parses them: the worker's and its sidecars', under their flag names. */
export type StartOptions = Pick<WorkerOptions, 'concurrency'> & Omit<SidecarOptions, 'log' | 'metricsAllowedHosts'> & {
  /** `--metrics-allowed-host`, repeatable: the sidecars' `metricsAllowedHosts`. */
  metricsAllowedHost?: string[];
  background?: boolean;
  /** The worker's `jobsDir`. */
  jobs?: string;
  /** The worker's `leaseMs`. */
  lease?: number;
};

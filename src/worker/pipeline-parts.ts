/**
 * What a worker's pipeline (pipeline.ts) is given: the narrow views of its neighbours (the live
 * instances and the pause, the tasks waited for) and its settings. The Worker (worker.ts) builds
 * them from the parts it owns.
 */
import type { Clock } from '../clock';
import type { LimitConfig } from '../config/types';
import type { SafeEmitter } from '../events';
import type { JobRegistry } from '../jobs/loader';
import type { Logger } from '../log';
import type { ControlStore, TaskStore } from '../store/types';
import type { DependencyLookup } from '../task/dependencies';
import type { WorkerEvents } from './events';

/** What the pipeline reads of the live instances and the worker name's pause (peers/control-link.ts). */
export interface Peers {
  /** Task `id` is this instance's share. */
  owns(id: string): boolean;
  readonly paused: boolean;
  readonly live: readonly string[];
  /** `instance` let a run lease expire: count it gone now. */
  suspect(instance: string): void;
}

/** What the pipeline asks of the tasks waited for (intake/dependency-watch.ts). */
export interface Dependencies {
  readonly lookup: DependencyLookup;
  watch(taskId: string, ids: readonly string[]): void;
  unwatch(taskId: string): void;
}

/** The settings a reload may change. */
export interface PipelineSettings {
  concurrency: number;
  horizonMs: number;
  minRepeatMs: number;
  /** The largest task document, bytes of JSON (worker.max_task_size). */
  maxTaskBytes: number;
  /** The default job timeout; 0 for none. */
  timeoutMs: number;
  historyLimit: number;
}

export interface PipelineOptions {
  worker: string;
  instance: string;
  store: Pick<TaskStore, 'write' | 'getMany' | 'dbNow'>;
  /** Where users' requests are removed once carried out. */
  control: Pick<ControlStore, 'remove'>;
  clock: Clock;
  log: Logger;
  events: SafeEmitter<WorkerEvents>;
  peers: Peers;
  dependencies: Dependencies;
  /** config `limits`: rate and concurrency limits of worker names and jobs. */
  limits: Readonly<Record<string, LimitConfig>>;
  leaseMs: number;
  /** How long past its date another instance's task waits before this one claims it. */
  graceMs: number;
  settings: PipelineSettings;
  jobs: JobRegistry;
}

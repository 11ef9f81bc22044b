/**
 * After as a library: explicit named exports only. Internals stay internal.
 */
export { loadConfig, parseConfig } from './config/load';
export { scrubUrl } from './config/urls';
export { type AfterConfig, type CommandBinding } from './config/types';
export { AfterError, ConfigError, CouchRequestError, JobTimeoutError, TaskInvalidError, UnknownJobError, UsageError } from './errors';
export { createLogger, silentLogger, type Logger } from './log';
export { connect, startWorker, type Client, type ConnectOptions, type StartWorkerOptions, type TaskInput } from './api';
export { Worker, type WorkerEvents, type WorkerOptions } from './worker/worker';
export { loadJobs, type JobRegistry } from './jobs/loader';
export type { JobFunction, JobContext, JobTask } from './jobs/run-job';
export { validateTask } from './task/validate';
export { nextState } from './task/next-state';
export { initDatabase } from './store/for-operators/init';
export { openConnection, type Connection } from './store/connection';
export { createTask, getTask, updateTask, deleteTask } from './store/for-operators/tasks';
export { listTasks, statusCounts, type StatusCount, type TaskFilter } from './store/for-operators/task-queries';
export { listInstances, type InstanceView } from './store/for-operators/instances';
export type { PageCursor, PageQuery, StatusGroup, TaskPage } from './store/for-operators/task-pages';
export type { ChartRange, RunPoint, RunSeries } from './store/for-operators/run-stats';
export type { RunFigures } from './stats/run-figures';
export { pauseWorker, resumeWorker, type PauseReport } from './store/for-operators/worker-pause';
export { pauseTask, resumeTask, runTaskNow } from './store/for-operators/task-actions';
export type { RunAgainBuilders, Delay } from './jobs/run-again';
export { createWorkerMetrics, type WorkerMetrics } from './metrics/worker-metrics';
export type { Lease, RunOutcome, Status, TaskDoc, TaskError } from './types';
export { STATUSES } from './types';

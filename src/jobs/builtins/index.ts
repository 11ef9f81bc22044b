/**
 * The built-in jobs: registered under their names when the worker enables them, so a task can
 * run a program (`exec`, an explicit opt-in) or call a URL (`webhook`) without a job module.
 */
import type { JobFunction } from '../run-job';
import { createExecJob, type ExecOptions } from './exec';
import { webhookJob } from './webhook';

export type BuiltinName = 'exec' | 'webhook';

/** Which built-ins to register. */
export interface BuiltinOptions {
  /** Lets every task writer run any program as the worker's user. @default false */
  exec?: boolean;
  /** @default true */
  webhook?: boolean;
}

const DEFAULT_ENABLED: Readonly<Record<BuiltinName, boolean>> = { exec: false, webhook: true };

/** The built-in jobs the options enable, by name. */
export function enabledBuiltins(options: BuiltinOptions = {}, execOptions: ExecOptions = {}): Map<BuiltinName, JobFunction> {
  const enabled = new Map<BuiltinName, JobFunction>();
  if (options.exec ?? DEFAULT_ENABLED.exec) enabled.set('exec', createExecJob(execOptions));
  if (options.webhook ?? DEFAULT_ENABLED.webhook) enabled.set('webhook', webhookJob);
  return enabled;
}

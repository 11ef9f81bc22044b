/**
 * The built-in jobs: registered under their names unless the worker disables them, so a task
 * can run a program (`exec`) or call a URL (`webhook`) without writing a job module.
 */
import type { JobFunction } from '../run-job';
import { execJob } from './exec';
import { webhookJob } from './webhook';

export type BuiltinName = 'exec' | 'webhook';

/** Which built-ins to register. Each @default true */
export interface BuiltinOptions {
  exec?: boolean;
  webhook?: boolean;
}

const BUILTIN_JOBS: ReadonlyMap<BuiltinName, JobFunction> = new Map<BuiltinName, JobFunction>([
  ['exec', execJob],
  ['webhook', webhookJob],
]);

/** The built-in jobs the options leave enabled, by name. */
export function enabledBuiltins(options: BuiltinOptions = {}): Map<BuiltinName, JobFunction> {
  const enabled = new Map<BuiltinName, JobFunction>();
  for (const [name, fn] of BUILTIN_JOBS) {
    if (options[name] !== false) enabled.set(name, fn);
  }
  return enabled;
}

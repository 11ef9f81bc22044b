/**
 * Worker names on the command line. A name becomes a file name (`<log.dir>/<name>.log`,
 * `<home>/secrets/<name>.json`) and a pm2 process name (`after-<name>`), so it is held to a
 * portable, path-free alphabet before it reaches any of them.
 */
import { UsageError } from '../errors';

const WORKER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The prefix that marks pm2 processes as After's background workers. */
export const PM2_PREFIX = 'after-';

export function checkWorkerName(name: string): string {
  if (!WORKER_NAME.test(name)) {
    throw new UsageError(
      `invalid worker name ${JSON.stringify(name)}: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function pm2ProcessName(worker: string): string {
  return `${PM2_PREFIX}${worker}`;
}

/** The worker name of a pm2 process of ours, or null for anyone else's process. */
export function workerOfProcess(processName: string | undefined): string | null {
  if (!processName || !processName.startsWith(PM2_PREFIX)) return null;
  const worker = processName.slice(PM2_PREFIX.length);
  return WORKER_NAME.test(worker) ? worker : null;
}

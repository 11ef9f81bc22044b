/** Other processes, by pid. */
import * as fs from 'node:fs';

/**
 * Whether the process runs. kill(pid, 0) also succeeds on a zombie (a detached process that
 * exited stays one until its parent reaps it), so /proc is asked where it exists. A process
 * whose main thread shows as a zombie while other threads still exit (libuv's pool after a
 * SIGKILL) still holds its files and ports: it counts as alive until its last thread is gone.
 * EPERM: the pid exists but belongs to another user, so it is alive.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return true;
  }
  const state = /^State:\s+(\S)/m.exec(status)?.[1];
  const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
  return state !== 'Z' || threads > 1;
}

/** Other processes, by pid. */
import * as fs from 'node:fs';

/**
 * Whether the process runs. kill(pid, 0) also succeeds on a zombie (a detached process that
 * exited stays one until init reaps it), so /proc is asked where it exists. EPERM: the pid
 * exists but belongs to another user, so it is alive.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

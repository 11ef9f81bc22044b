/** Processes the tests look at by pid: alive or gone, and the pm2 daemon `after start -b` leaves. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isAlive } from '../../src/process';
import { waitFor } from './wait';

export { isAlive } from '../../src/process';

/** The session id of a process (field 6 of /proc/<pid>/stat); 0 once it is gone. */
export function sessionOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  } catch {
    return 0;
  }
}

/** The pid of the pm2 daemon of `home` (`<home>/pm2/pm2.pid`) while it runs, else null. */
export function pm2DaemonPid(home: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(home, 'pm2', 'pm2.pid'), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Stop the pm2 daemon a test's `after start -b` left in `home`: SIGTERM makes pm2 delete its
 * processes and exit, so no worker outlives its test; SIGKILL if it has not gone within 15 s.
 */
export async function stopPm2Daemon(home: string): Promise<void> {
  const pid = pm2DaemonPid(home);
  if (pid === null) return;
  process.kill(pid, 'SIGTERM');
  await waitFor(async () => !isAlive(pid), { timeoutMs: 15_000, intervalMs: 100, what: `pm2 daemon ${pid} to exit` }).catch(() => {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
}

/** Processes the tests look at by pid: alive or gone, and the pm2 daemon `after start -b` leaves. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitFor } from './wait';

/**
 * Alive and not a zombie: a detached process that exited stays a zombie until init reaps it,
 * and `kill(pid, 0)` still succeeds on one. Where /proc cannot be read, `kill(pid, 0)` decides.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold ')'.
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

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

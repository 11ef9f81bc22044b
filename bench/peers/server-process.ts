/** What the two throwaway servers share: finding a binary, and waiting for a process to end. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The full path of `name` on PATH, if it is installed. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user; only ESRCH means it is gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends `signal` to `pid` and waits until the process is gone; `lastResort` after `graceMs`.
 * The servers are not always the bench's children (pg_ctl detaches PostgreSQL), so this polls
 * rather than waiting for an 'exit' event.
 */
export async function stopByPid(pid: number, signal: NodeJS.Signals, lastResort: NodeJS.Signals, graceMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, signal);
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, lastResort);
      await new Promise((resolve) => setTimeout(resolve, 500));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Which operating-system user the programs of commands and `exec` run as.
 *
 * A program that runs as the worker's own user can reach everything the worker can: its memory
 * (`/proc/<pid>/mem`, where ptrace is allowed), its environment and its parent's, its pm2, its
 * files. No file permission keeps a process from its own user, so the only boundary between a
 * task writer's program and the worker's credentials is another user (as cron runs each
 * crontab as its owner). When the worker runs as root, programs run as `worker.program_user`
 * (`nobody` unless set), or as a command's own `user`; `"root"` must be said explicitly. A
 * worker that is not root can only run them as itself: a `user` naming anyone else is a
 * problem at start, and SECURITY.md says what a program then reaches.
 */
import * as fs from 'node:fs';

/** A user programs run as. */
export interface ProgramUser {
  name: string;
  uid: number;
  gid: number;
  /** Its home folder: the program's HOME. */
  home: string;
}

/** The user programs of a root worker run as when the config names none. */
export const DEFAULT_PROGRAM_USER_FOR_ROOT = 'nobody';

/** A user of this machine by name (or number), from /etc/passwd; undefined when there is none. */
export function lookUpUser(nameOrUid: string, passwd = '/etc/passwd'): ProgramUser | undefined {
  let text: string;
  try {
    text = fs.readFileSync(passwd, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (name === nameOrUid || uid === nameOrUid) return { name, uid: Number(uid), gid: Number(gid), home: home || '/' };
  }
  return undefined;
}

export type ProgramUserChoice = { ok: true; user: ProgramUser | undefined } | { ok: false; problem: string };

/**
 * The user programs run as, for a setting (`worker.program_user` or a command's `user`; null:
 * none given) and the worker's own uid. `user: undefined` means the worker's own user.
 */
export function chooseProgramUser(configured: string | null, field: string, workerUid: number | undefined, look = lookUpUser): ProgramUserChoice {
  // No user switching off POSIX (Windows): programs run as the worker's user.
  if (workerUid === undefined) return configured === null ? { ok: true, user: undefined } : { ok: false, problem: `${field}: programs can run as another user only on a POSIX system` };
  const wanted = configured ?? (workerUid === 0 ? DEFAULT_PROGRAM_USER_FOR_ROOT : null);
  if (wanted === null) return { ok: true, user: undefined };
  const user = look(wanted);
  if (user === undefined) return { ok: false, problem: `${field}: there is no user ${JSON.stringify(wanted)} on this machine` };
  if (user.uid === workerUid) return { ok: true, user: undefined };
  if (workerUid !== 0) {
    return { ok: false, problem: `${field}: running programs as ${user.name} needs the worker to run as root (it runs as uid ${workerUid})` };
  }
  return { ok: true, user };
}

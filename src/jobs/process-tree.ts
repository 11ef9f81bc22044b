/**
 * The whole process tree of a program a job runs (a command or `exec`), ended together.
 *
 * The program is spawned detached, so it leads a process group of its own and one signal to
 * the group reaches what it started. A descendant that left the group (`setsid`, a daemon's
 * double fork) escapes that signal, so every run also carries a unique marker in its
 * environment, which descendants inherit: at the end, every process of the worker's user (of
 * any user, for a root worker, whose programs run as another: program-user.ts) whose
 * environment holds the marker is signalled too. This is Jenkins' ProcessTreeKiller technique
 * (BUILD_ID / JENKINS_NODE_COOKIE). It needs /proc (Linux); elsewhere only the group is
 * signalled. A descendant that clears its own environment and leaves the group is not found:
 * this stops accidents and careless programs, not a program that hides on purpose (one that may
 * run anything as the worker's user can do much worse).
 *
 * A tree is ended when the program exits (leftovers included), times out, is canceled, or when
 * the worker shuts down: SIGTERM, then SIGKILL to whatever is left after a grace period. If the
 * worker process exits first, an exit hook sends SIGKILL to every tree still tracked.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';

/** The environment variable that marks every process of one run. */
export const RUN_COOKIE_ENV = 'AFTER_RUN_COOKIE';
/** How often a tree being ended is checked for survivors. */
const SURVIVOR_POLL_MS = 100;

const COOKIE_PREFIX = Buffer.from(`${RUN_COOKIE_ENV}=`);
const PROC = '/proc';

export interface ProgramTree {
  /** The marker value; put it in the program's environment as RUN_COOKIE_ENV. */
  readonly cookie: string;
  /** Record the program's pid (its process group, since it is spawned detached). */
  attach(pid: number | undefined): void;
  /**
   * SIGTERM to the group and every marked process now; SIGKILL after `graceMs` to whatever is
   * left. Resolves once nothing is left (or SIGKILL was sent) with the number of marked
   * processes found at the first signal. Calling it again returns the same promise.
   */
  end(graceMs: number): Promise<number>;
}

const tracked = new Set<Tree>();
let exitHookInstalled = false;

/** A new tree, tracked until it has been ended (or the worker process exits). */
export function newProgramTree(): ProgramTree {
  installExitHook();
  const tree = new Tree(randomBytes(16).toString('hex'));
  tracked.add(tree);
  return tree;
}

class Tree implements ProgramTree {
  private pgid: number | undefined;
  private ending: Promise<number> | undefined;

  constructor(readonly cookie: string) {}

  attach(pid: number | undefined): void {
    this.pgid = pid;
  }

  end(graceMs: number): Promise<number> {
    this.ending ??= this.endNow(graceMs).finally(() => tracked.delete(this));
    return this.ending;
  }

  /** SIGKILL to everything at once, synchronously: the worker process is exiting. */
  killNowSync(marked: readonly number[]): void {
    signalGroup(this.pgid, 'SIGKILL');
    for (const pid of marked) signalPid(pid, 'SIGKILL');
  }

  private async endNow(graceMs: number): Promise<number> {
    // The group first and synchronously: at a shutdown the process may exit very soon.
    signalGroup(this.pgid, 'SIGTERM');
    const marked = await markedPids(this.cookie);
    for (const pid of marked) signalPid(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    for (;;) {
      const survivors = await markedPids(this.cookie);
      const groupAlive = groupExists(this.pgid);
      if (survivors.length === 0 && !groupAlive) return marked.length;
      if (Date.now() >= deadline) {
        signalGroup(this.pgid, 'SIGKILL');
        for (const pid of survivors) signalPid(pid, 'SIGKILL');
        return marked.length;
      }
      await sleep(Math.min(SURVIVOR_POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    if (tracked.size === 0) return;
    const byCookie = markedPidsSync(new Set([...tracked].map((tree) => tree.cookie)));
    for (const tree of tracked) tree.killNowSync(byCookie.get(tree.cookie) ?? []);
    tracked.clear();
  });
}

function signalGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // no process left in the group (or it was never made)
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // it ended in between
  }
}

/** Whether any process (a zombie included) is still in the group. */
function groupExists(pgid: number | undefined): boolean {
  if (pgid === undefined) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whose processes are looked at: the worker's user's, or everyone's for a root worker (its
 * programs may run as another user, program-user.ts, and root may read any environment).
 */
function ownerFilter(): ((uid: number) => boolean) | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  return uid === 0 ? () => true : (owner) => owner === uid;
}

/** The pids of the processes (see ownerFilter) whose environment carries `cookie`. */
async function markedPids(cookie: string): Promise<number[]> {
  const owned = ownerFilter();
  if (owned === undefined) return [];
  let entries: string[];
  try {
    entries = await fs.promises.readdir(PROC);
  } catch {
    return [];
  }
  const found = await Promise.all(
    entries.filter(isPid).map(async (entry) => {
      try {
        if (!owned((await fs.promises.stat(`${PROC}/${entry}`)).uid)) return undefined;
        return cookieOf(await fs.promises.readFile(`${PROC}/${entry}/environ`)) === cookie ? Number(entry) : undefined;
      } catch {
        // gone, or not ours to read
        return undefined;
      }
    }),
  );
  return found.filter((pid): pid is number => pid !== undefined && pid !== process.pid);
}

/** markedPids for several cookies at once, synchronously (for the exit hook). */
function markedPidsSync(cookies: ReadonlySet<string>): Map<string, number[]> {
  const byCookie = new Map<string, number[]>();
  const owned = ownerFilter();
  if (owned === undefined) return byCookie;
  let entries: string[];
  try {
    entries = fs.readdirSync(PROC);
  } catch {
    return byCookie;
  }
  for (const entry of entries.filter(isPid)) {
    try {
      if (!owned(fs.statSync(`${PROC}/${entry}`).uid)) continue;
      const cookie = cookieOf(fs.readFileSync(`${PROC}/${entry}/environ`));
      if (cookie === undefined || !cookies.has(cookie) || Number(entry) === process.pid) continue;
      byCookie.set(cookie, [...(byCookie.get(cookie) ?? []), Number(entry)]);
    } catch {
      // gone, or not ours to read
    }
  }
  return byCookie;
}

function isPid(entry: string): boolean {
  return /^\d+$/.test(entry);
}

/** The RUN_COOKIE_ENV value in a NUL-separated environment block, if any. */
function cookieOf(environ: Buffer): string | undefined {
  let at = environ.indexOf(COOKIE_PREFIX);
  while (at > 0 && environ[at - 1] !== 0) at = environ.indexOf(COOKIE_PREFIX, at + 1);
  if (at < 0) return undefined;
  const start = at + COOKIE_PREFIX.length;
  const end = environ.indexOf(0, start);
  return environ.subarray(start, end < 0 ? environ.length : end).toString('latin1');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

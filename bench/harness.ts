/**
 * What every workload needs besides its server (server.ts): the worker as a real child process
 * (`node bin/after start bench ...`, one per instance), what it logs, /proc readings of a
 * process, and the bench's task document.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskDoc } from '../src/types';
import { DoneTracker } from './done-tracker';
import { AFTER_BIN, REPO_ROOT, trackPid, withoutAfterVariables, type BenchDb } from './server';

export { REPO_ROOT } from './server';
export type { BenchDb, BenchServer } from './server';

export const BENCH_JOBS_DIR = path.join(REPO_ROOT, 'bench', 'jobs');
const LAG_PROBE = path.join(__dirname, 'lag-probe.js');
export const WORKER_NAME = 'bench';
/** The job in bench/jobs that stamps its own start time into the task's result. */
export const STAMP_JOB = 'stamp';

export interface WorkerOptions {
  /** `--concurrency N`; undefined starts the worker with its default, as `after start bench` does. */
  concurrency?: number;
  /** A folder to write the worker's `--cpu-prof` profile into. */
  profileDir?: string;
  /** The node of a cluster this instance connects to (index into `db.nodes`). @default 0 */
  node?: number;
  /** More environment for the worker (BENCH_STARTS_DIR: the stamp job records every start). */
  env?: Record<string, string>;
  /** A tracker shared by several instances (W5: a task is done when any instance reports it). */
  done?: DoneTracker;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Date.now() just before the spawn. */
  readonly spawnedAtMs: number;
  /** Resolves with Date.now() when the worker logs "worker bench ready". */
  readonly ready: Promise<number>;
  /** Date.now() at which each task's "done" line was seen, by task id. */
  readonly doneAtMs: ReadonlyMap<string, number>;
  /** Claims this instance lost to another writer, from its debug lines (see LOST_CLAIM). */
  readonly claimsLost: number;
  /** Resolves with the time of the `count`-th "done" line; rejects after `timeoutMs`. */
  waitForDone(count: number, timeoutMs: number): Promise<number>;
  exited(): boolean;
  /** What the worker printed last (for error messages). */
  tail(): string;
  /** SIGTERM, wait for the exit; returns the event-loop delay the probe recorded. */
  stop(): Promise<EventLoopLag | undefined>;
}

export interface EventLoopLag {
  p50: number;
  p99: number;
  max: number;
}

const READY_LINE = new RegExp(`worker ${WORKER_NAME} ready`);
const DONE_LINE = /\btask (\S+) done\b/;
/**
 * A claim lost to another writer. The worker logs it at debug level (src/worker/events.ts)
 * from its `task:conflict` event, "task <id>: changed by another writer during claim; deciding
 * again", and from its `task:contested` event when a cluster claim got 202 and stood down,
 * "task <id>: the claim reached fewer copies than a quorum (202); standing down". Matched on
 * their markers, not their wording: "during claim" (or "during schedule": the hold is a claim
 * too), "standing down", or "conflict" together with "claim". Not counted: a line naming another
 * write ("during hand-back"), or a conflict that is not about a claim ("could not delete the
 * stale revision ...: document update conflict", the clean-up of a branch that stood down).
 */
const DURING_CLAIM = /\bduring (claim|schedule)\b|\bstanding down\b/i;
const CONFLICT_ABOUT_CLAIM = /\bconflict.*\bclaim|\bclaim.*\bconflict/i;
const DURING_OTHER_WRITE = /\bduring (?!claim\b|schedule\b)\S+/i;
const TASK_ID = /\btask (\S+?):?(?:\s|$)/;
/** Two lines about the same task this close together report one lost claim. */
const SAME_CLAIM_MS = 1000;

/** Whether a worker's log line reports a lost claim. */
export function isLostClaim(line: string): boolean {
  if (DURING_CLAIM.test(line)) return true;
  return CONFLICT_ABOUT_CLAIM.test(line) && !DURING_OTHER_WRITE.test(line);
}

/** `node bin/after start bench --jobs bench/jobs [--concurrency N]`, as an operator runs it. */
export function startWorker(db: BenchDb, options: WorkerOptions = {}): WorkerProcess {
  const node = db.nodes[options.node ?? 0];
  if (!node) throw new Error(`the database has no node ${options.node}`);
  const lagFile = path.join(db.place, `lag-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
  const nodeArgs = ['-r', LAG_PROBE];
  if (options.profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
  const args = [...nodeArgs, AFTER_BIN, 'start', WORKER_NAME, '--jobs', BENCH_JOBS_DIR];
  if (options.concurrency !== undefined) args.push('--concurrency', String(options.concurrency));
  const spawnedAtMs = Date.now();
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...withoutAfterVariables(process.env), ...node.env, ...options.env, BENCH_LAG_FILE: lagFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('cannot start the worker');
  const pid = child.pid;
  const untrack = trackPid(pid);
  let lastLines: string[] = [];
  const done = options.done ?? new DoneTracker({ exited: () => child.exitCode !== null, tail: () => lastLines.join('\n') });
  let claimsLost = 0;
  const lastLostClaimAt = new Map<string, number>();
  let resolveReady!: (at: number) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<number>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) => {
    untrack();
    rejectReady(new Error(`the worker exited (code ${code}) before it was ready: ${lastLines.join('\n')}`));
    done.wake();
  });

  const onLine = (line: string): void => {
    const now = Date.now();
    lastLines.push(line);
    if (lastLines.length > 20) lastLines = lastLines.slice(-20);
    const doneLine = DONE_LINE.exec(line);
    if (doneLine) {
      done.markDone(doneLine[1]!, now);
    } else if (isLostClaim(line)) {
      const id = TASK_ID.exec(line)?.[1];
      const before = id === undefined ? undefined : lastLostClaimAt.get(id);
      if (before === undefined || now - before > SAME_CLAIM_MS) claimsLost++;
      if (id !== undefined) lastLostClaimAt.set(id, now);
    } else if (READY_LINE.test(line)) {
      resolveReady(now);
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) splitLines(stream, onLine);

  return {
    pid,
    spawnedAtMs,
    ready,
    doneAtMs: done.doneAtMs,
    get claimsLost() {
      return claimsLost;
    },
    waitForDone: (count, timeoutMs) => done.waitForDone(count, timeoutMs),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    tail: () => lastLines.join('\n'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(late);
      }
      try {
        return JSON.parse(fs.readFileSync(lagFile, 'utf8')) as EventLoopLag;
      } catch {
        return undefined;
      }
    },
  };
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    buffered += text;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  });
}

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * cpuTicks of a process and all its descendants alive now: CouchDB runs its JavaScript (the
 * validate_doc_update, JavaScript views and filters) in `couchjs` child processes, whose CPU
 * is the database's too.
 */
export function treeCpuTicks(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const next = pending.pop()!;
    try {
      total += cpuTicks(next);
    } catch {
      // exited meanwhile
    }
    pending.push(...(children.get(next) ?? []));
  }
  return total;
}

/** Linux's USER_HZ: /proc reports CPU time in hundredths of a second. */
export const TICKS_PER_SECOND = 100;

/** CPU use of `pid` between two readings, in % of one core. */
export function cpuPercent(ticksBefore: number, ticksAfter: number, elapsedMs: number): number {
  return ((ticksAfter - ticksBefore) / TICKS_PER_SECOND / (elapsedMs / 1000)) * 100;
}

/** Resident set size of a process, in bytes (VmRSS in /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : Number.NaN;
}

/** A task document of the bench worker running the stamp job. */
export function benchTask(id: string, dateMs: number): TaskDoc {
  return { _id: id, worker: WORKER_NAME, status: 'waiting', date: new Date(dateMs).toISOString(), job: { name: STAMP_JOB } } as TaskDoc;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Drain {
  /** Every task was reported done within the time allowed. */
  complete: boolean;
  /** Tasks reported done. */
  done: number;
  /** Date.now() of the last "done" line seen (NaN when none). */
  lastDoneAtMs: number;
}

/**
 * Waits until `count` tasks are reported done, or `timeoutMs`, or the worker exits: a slow
 * database gives figures for what did run (and a row saying what did not) instead of none.
 */
export async function waitForDrain(worker: Pick<WorkerProcess, 'waitForDone' | 'doneAtMs'>, count: number, timeoutMs: number): Promise<Drain> {
  try {
    return { complete: true, done: count, lastDoneAtMs: await worker.waitForDone(count, timeoutMs) };
  } catch {
    const times = [...worker.doneAtMs.values()];
    return { complete: false, done: times.length, lastDoneAtMs: times.length > 0 ? Math.max(...times) : Number.NaN };
  }
}

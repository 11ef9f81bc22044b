/**
 * Running one program for a job: what the `exec` built-in and every command (a program bound
 * to a job name in config) have in common.
 *
 * No shell ever (`shell: false`: an argument is one argv entry whatever characters it holds), a
 * minimal environment (never the worker's own variables or credentials), stdin closed unless
 * the command sends the task on it, output captured within a bound so a chatty program cannot
 * fill the worker's memory or the document, a default time limit, and the program's whole
 * process tree ended with it (process-tree.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DEFAULTS } from '../config/defaults';
import { AfterError, JobTimeoutError, TaskInvalidError } from '../errors';
import type { Logger } from '../log';
import { newProgramTree, RUN_COOKIE_ENV } from './process-tree';
import type { ProgramUser } from './program-user';

/** Bytes of stdout and of stderr kept, each. */
export const EXEC_OUTPUT_LIMIT = 64 * 1024;
/** After SIGTERM, how long a program (and what it started) has to exit before SIGKILL. */
export const EXEC_KILL_GRACE_MS = 2000;
/** worker.program_timeout_ms's default (1 h): the limit of a run when nothing else sets one. */
export const DEFAULT_PROGRAM_TIMEOUT_MS: number = DEFAULTS.worker.program_timeout_ms;
/**
 * After the program exits, how long to wait for its output pipes to close: a leftover that
 * inherited them and resists SIGTERM would otherwise hold the run open as long as it lives.
 */
const PIPE_CLOSE_GRACE_MS = 1000;
/** Characters of stderr quoted in a failure message. */
const STDERR_TAIL_CHARS = 300;

export interface ExecResult {
  code: 0;
  stdout: string;
  stderr: string;
  /** Present when stdout passed EXEC_OUTPUT_LIMIT: `stdout` holds its first bytes. */
  stdout_truncated?: true;
  /** Present when stderr passed EXEC_OUTPUT_LIMIT: `stderr` holds its last bytes. */
  stderr_truncated?: true;
}

export interface ProgramRun {
  /** The program, then its arguments. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed; none: stdin is closed at once. */
  stdin?: string;
  /** The run's abort: cancel, the task's own timeout, worker shutdown. */
  signal: AbortSignal;
  /** The program's own limit (ms) when the task sets no timeout; undefined or 0: none. */
  timeoutMs?: number;
  /** Starts every failure message: `exec`, `command "backup"`. */
  label: string;
  /** For a line about processes the program left running. */
  log: Logger;
  taskId: string;
  /** The user it runs as (the worker must be root); none: the worker's own. */
  user?: ProgramUser;
}

/**
 * The environment a program gets: PATH and LANG of the worker, HOME (of the user it runs as),
 * the task's id and the command's own fixed variables — nothing else of the worker's (so no
 * credential, whatever the worker's environment holds) — and the marker that finds its process
 * tree.
 */
export function programEnvironment(taskId: string, extra: Readonly<Record<string, string>> = {}, user?: ProgramUser): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  if (user) env.HOME = user.home;
  else if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  if (process.env.LANG !== undefined) env.LANG = process.env.LANG;
  Object.assign(env, extra);
  env.AFTER_TASK_ID = taskId;
  return env;
}

/**
 * Runs the program to its end: resolves with its output on exit code 0, rejects otherwise
 * (E_EXEC_FAILED, E_EXEC_NOT_FOUND, a JobTimeoutError at its own limit, or the signal's reason
 * when aborted).
 */
export function runProgram(run: ProgramRun): Promise<ExecResult> {
  const [program, ...args] = run.argv as [string, ...string[]];
  const { signal, label } = run;
  return new Promise<ExecResult>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);

    const tree = newProgramTree();
    let child: ChildProcess;
    try {
      // detached: the program leads its own process group (see process-tree.ts).
      child = spawn(program, args, {
        shell: false,
        stdio: [run.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...run.env, [RUN_COOKIE_ENV]: tree.cookie },
        ...(run.cwd !== undefined ? { cwd: run.cwd } : {}),
        // Another user: Node then drops the worker's supplementary groups too (setgroups).
        ...(run.user ? { uid: run.user.uid, gid: run.user.gid } : {}),
        detached: true,
      });
    } catch (err) {
      void tree.end(0);
      return reject(spawnFailure(label, program, err));
    }
    tree.attach(child.pid);

    if (run.stdin !== undefined && child.stdin) {
      // A program that exits without reading all of it closes the pipe: EPIPE is no failure.
      child.stdin.on('error', () => undefined);
      child.stdin.end(run.stdin);
    }
    const stdout = new BoundedOutput(EXEC_OUTPUT_LIMIT, 'head');
    const stderr = new BoundedOutput(EXEC_OUTPUT_LIMIT, 'tail');
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

    let settled = false;
    let spawnError: unknown;
    let timedOut: JobTimeoutError | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let pipeTimer: NodeJS.Timeout | undefined;
    let limitTimer: NodeJS.Timeout | undefined;

    const stopTree = (): void => void tree.end(EXEC_KILL_GRACE_MS);
    const onAbort = (): void => stopTree();
    signal.addEventListener('abort', onAbort, { once: true });
    if (run.timeoutMs !== undefined && run.timeoutMs > 0) {
      const limit = run.timeoutMs;
      limitTimer = setTimeout(() => {
        timedOut = new JobTimeoutError(limit);
        stopTree();
      }, limit);
    }

    const settle = (): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (pipeTimer) clearTimeout(pipeTimer);
      if (limitTimer) clearTimeout(limitTimer);
      if (spawnError !== undefined) return reject(spawnFailure(label, program, spawnError));
      if (signal.aborted) return reject(signal.reason);
      if (timedOut) return reject(timedOut);
      const code = exit?.code ?? null;
      if (code === 0) return resolve(successResult(stdout, stderr));
      const how = code !== null ? `exited with code ${code}` : `was killed by ${exit?.signal ?? 'a signal'}`;
      reject(new AfterError('E_EXEC_FAILED', `${label}: ${program} ${how}${stderrTail(stderr.text())}`));
    };

    child.on('error', (err) => {
      // 'error' without a pid: the program never started (ENOENT, EACCES...).
      if (child.pid === undefined) {
        spawnError = err;
        void tree.end(0);
        settle();
      }
    });
    child.on('exit', (code, exitSignal) => {
      exit = { code, signal: exitSignal };
      // What the program left running ends with it: a run is the program's whole tree.
      void tree.end(EXEC_KILL_GRACE_MS).then((left) => {
        if (left > 0 && !signal.aborted && !timedOut) {
          run.log.info(`task ${run.taskId}: ${label}: ${program} left ${left === 1 ? '1 process' : `${left} processes`} running; ended`);
        }
      });
      pipeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle();
      }, PIPE_CLOSE_GRACE_MS);
    });
    child.on('close', settle);
  });
}

/** Every argument a string without NUL (such an argument cannot be passed to a program). */
export function checkStringArguments(args: unknown[], field: string, label: string): asserts args is string[] {
  args.forEach((arg, i) => {
    if (typeof arg !== 'string') {
      throw new TaskInvalidError(field, `${label}: ${field}[${i}] is ${describe(arg)}, expected a string`);
    }
    if (arg.includes('\0')) {
      throw new TaskInvalidError(field, `${label}: ${field}[${i}] contains a NUL character`);
    }
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function successResult(stdout: BoundedOutput, stderr: BoundedOutput): ExecResult {
  const result: ExecResult = { code: 0, stdout: stdout.text(), stderr: stderr.text() };
  if (stdout.truncated) result.stdout_truncated = true;
  if (stderr.truncated) result.stderr_truncated = true;
  return result;
}

function spawnFailure(label: string, program: string, err: unknown): AfterError {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') return new AfterError('E_EXEC_NOT_FOUND', `${label}: ${program}: command not found`);
  if (code === 'EACCES') return new AfterError('E_EXEC_FAILED', `${label}: ${program}: permission denied`);
  const why = err instanceof Error ? err.message : String(err);
  return new AfterError('E_EXEC_FAILED', `${label}: cannot start ${program}: ${why}`);
}

/** The end of stderr, on one line, to say why a program failed. */
function stderrTail(stderr: string): string {
  const text = stderr.trim();
  if (text === '') return '';
  const tail = text.length > STDERR_TAIL_CHARS ? `…${text.slice(-STDERR_TAIL_CHARS)}` : text;
  return `: ${tail.replace(/\s*[\r\n]+\s*/g, ' | ')}`;
}

/**
 * Output kept within `limit` bytes: the first bytes ('head', for stdout, where a program's
 * answer starts) or the last ones ('tail', for stderr, where the reason it failed usually is).
 */
class BoundedOutput {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(
    private readonly limit: number,
    private readonly keep: 'head' | 'tail',
  ) {}

  push(chunk: Buffer): void {
    if (this.keep === 'head') {
      const room = this.limit - this.size;
      if (chunk.length > room) this.truncated = true;
      if (room <= 0) return;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(kept);
      this.size += kept.length;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit) {
      this.truncated = true;
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

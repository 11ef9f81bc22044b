/**
 * The `exec` built-in job: runs a program with an argument array, so a job can be written in
 * any language.
 *
 *   {"job": {"name": "exec", "arguments": ["/usr/bin/env", "printf", "%s", "hi"]}}
 *
 * Task data is untrusted, so: no shell ever (`shell: false`; an argument is one argv entry
 * whatever characters it holds), a minimal environment (the worker's secrets, like
 * AFTER_COUCHDB_URL with its password, never reach the program), stdin closed, and output
 * captured within a bound so a chatty program cannot fill the worker's memory or the document.
 * Anyone who can write task documents can run any program the worker's user may run: disable
 * this built-in where the database's writers are not trusted with that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { AfterError, TaskInvalidError } from '../../errors';
import { jobArguments, type JobContext, type JobTask } from '../run-job';

/** Bytes of stdout and of stderr kept, each. */
export const EXEC_OUTPUT_LIMIT = 64 * 1024;
/** After SIGTERM, how long a program has to exit before SIGKILL. */
export const EXEC_KILL_GRACE_MS = 2000;
/**
 * After the program exits, how long to wait for its output pipes to close: a background
 * grandchild that inherited them would otherwise hold the run open as long as it lives.
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

export async function execJob(_task: JobTask, ctx: JobContext): Promise<ExecResult> {
  const argv = execArgv(jobArguments(ctx.doc));
  return runProgram(argv, execEnvironment(ctx.doc._id), ctx.signal);
}

/** The argument array, checked: the program (non-empty), then its arguments, all strings. */
export function execArgv(args: unknown[]): string[] {
  if (args.length === 0) {
    throw new TaskInvalidError(
      'job.arguments',
      'exec: job.arguments must name the program to run, then its arguments, e.g. ["/usr/bin/env", "printf", "hi"]',
    );
  }
  args.forEach((arg, i) => {
    if (typeof arg !== 'string') {
      throw new TaskInvalidError('job.arguments', `exec: job.arguments[${i}] is ${describe(arg)}, expected a string`);
    }
    if (arg.includes('\0')) {
      throw new TaskInvalidError('job.arguments', `exec: job.arguments[${i}] contains a NUL character`);
    }
  });
  if (args[0] === '') throw new TaskInvalidError('job.arguments', 'exec: job.arguments[0] (the program) is empty');
  return args as string[];
}

/** PATH, HOME and LANG of the worker, and the task's id: nothing else of the worker's env. */
export function execEnvironment(taskId: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  if (process.env.LANG !== undefined) env.LANG = process.env.LANG;
  env.AFTER_TASK_ID = taskId;
  return env;
}

function runProgram(argv: string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<ExecResult> {
  const [program, ...args] = argv as [string, ...string[]];
  return new Promise<ExecResult>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);

    let child: ChildProcess;
    try {
      // detached: the program leads its own process group, so a cancel or timeout also stops
      // what it started (a shell script's children), not only the program itself.
      child = spawn(program, args, { shell: false, stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    } catch (err) {
      return reject(spawnFailure(program, err));
    }

    const stdout = new BoundedOutput(EXEC_OUTPUT_LIMIT, 'head');
    const stderr = new BoundedOutput(EXEC_OUTPUT_LIMIT, 'tail');
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

    let settled = false;
    let spawnError: unknown;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let pipeTimer: NodeJS.Timeout | undefined;

    const onAbort = (): void => {
      killGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), EXEC_KILL_GRACE_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    const settle = (): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (pipeTimer) clearTimeout(pipeTimer);
      if (spawnError !== undefined) return reject(spawnFailure(program, spawnError));
      if (signal.aborted) return reject(signal.reason);
      const code = exit?.code ?? null;
      if (code === 0) return resolve(successResult(stdout, stderr));
      const how = code !== null ? `exited with code ${code}` : `was killed by ${exit?.signal ?? 'a signal'}`;
      reject(new AfterError('E_EXEC_FAILED', `exec: ${program} ${how}${stderrTail(stderr.text())}`));
    };

    child.on('error', (err) => {
      // 'error' without a pid: the program never started (ENOENT, EACCES...).
      if (child.pid === undefined) {
        spawnError = err;
        settle();
      }
    });
    child.on('exit', (code, exitSignal) => {
      exit = { code, signal: exitSignal };
      pipeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle();
      }, PIPE_CLOSE_GRACE_MS);
    });
    child.on('close', settle);
  });
}

function successResult(stdout: BoundedOutput, stderr: BoundedOutput): ExecResult {
  const result: ExecResult = { code: 0, stdout: stdout.text(), stderr: stderr.text() };
  if (stdout.truncated) result.stdout_truncated = true;
  if (stderr.truncated) result.stderr_truncated = true;
  return result;
}

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // the group is gone already, or was never made: signal the program alone
    try {
      child.kill(sig);
    } catch {
      // it exited in between
    }
  }
}

function spawnFailure(program: string, err: unknown): AfterError {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') return new AfterError('E_EXEC_NOT_FOUND', `exec: ${program}: command not found`);
  if (code === 'EACCES') return new AfterError('E_EXEC_FAILED', `exec: ${program}: permission denied`);
  const why = err instanceof Error ? err.message : String(err);
  return new AfterError('E_EXEC_FAILED', `exec: cannot start ${program}: ${why}`);
}

/** The end of stderr, on one line, to say why a program failed. */
function stderrTail(stderr: string): string {
  const text = stderr.trim();
  if (text === '') return '';
  const tail = text.length > STDERR_TAIL_CHARS ? `…${text.slice(-STDERR_TAIL_CHARS)}` : text;
  return `: ${tail.replace(/\s*[\r\n]+\s*/g, ' | ')}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
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

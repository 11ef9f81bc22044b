/**
 * Run the `after` CLI the way a user does: `node bin/after ...` as a child process.
 * Every child is registered, so the root hook can fail a test that leaves one running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

/** Repository root: this file runs from dist/test/helpers. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const AFTER_BIN = path.join(REPO_ROOT, 'bin', 'after');

export interface CliOptions {
  /** Added to the environment (After's own variables in the parent's are dropped first). */
  env?: Record<string, string>;
  /** @default the repository root */
  cwd?: string;
  /** Written to stdin, then stdin is closed. */
  input?: string;
  /** Kill the command (and fail) after this long. @default 30000 */
  timeoutMs?: number;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `after <args>` to completion. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = spawnCli(args, options);
  if (options.input !== undefined) child.process.stdin?.end(options.input);
  else child.process.stdin?.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const outcome = await Promise.race([child.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    killGroup(child.pid, 'SIGKILL');
    await child.exited;
    throw new Error(`after ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout: ${child.stdout}; stderr: ${child.stderr}`);
  }
  // Killed by a signal: the shell's convention, 128 + signal number.
  const code = outcome ?? 128 + (child.signal ? os.constants.signals[child.signal] : 0);
  return { code, stdout: child.stdout, stderr: child.stderr };
}

export interface ChildHandle {
  readonly pid: number;
  readonly process: ChildProcess;
  /** What was printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** The command line, for messages. */
  readonly title: string;
  /** Signal that ended the child, once it has exited by one. */
  readonly signal: NodeJS.Signals | null;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** Resolves with the match once stdout or stderr (so far or later) matches; rejects on timeout or exit. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

const liveChildren = new Set<ChildHandle>();

/** Start `after <args>` and leave it running (a worker, a foreground server). */
export function spawnCli(args: string[], options: CliOptions = {}): ChildHandle {
  // Its own process group, so a leftover is killed with everything it started (a foreground
  // `after db start` runs the embedded server as its child).
  const child = spawn(process.execPath, [AFTER_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`cannot start after ${args.join(' ')}`);
  let stdout = '';
  let stderr = '';
  let exitSignal: NodeJS.Signals | null = null;
  let running = true;
  const outputListeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    for (const listener of outputListeners) listener();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
    for (const listener of outputListeners) listener();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, sig) => {
      exitSignal = sig;
      // 'close' comes once stdout/stderr are drained; a grandchild that inherited them may
      // keep them open, so do not wait for it forever.
      const drained = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2000);
      child.once('close', () => {
        clearTimeout(drained);
        running = false;
        liveChildren.delete(handle);
        for (const listener of outputListeners) listener();
        resolve(code);
      });
    });
  });
  const title = `after ${args.join(' ')}`;

  const handle: ChildHandle = {
    pid: child.pid,
    process: child,
    title,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get signal() {
      return exitSignal;
    },
    get running() {
      return running;
    },
    exited,
    waitForOutput(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = stdout.match(pattern) ?? stderr.match(pattern);
          if (match) return finish(() => resolve(match));
          if (!running) {
            finish(() => reject(new Error(`${title} exited before printing ${pattern}; stdout: ${stdout}; stderr: ${stderr}`)));
          }
        };
        const timer = setTimeout(() => {
          finish(() => reject(new Error(`${title} printed nothing matching ${pattern} within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`)));
        }, timeoutMs);
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          outputListeners.delete(check);
          settle();
        };
        outputListeners.add(check);
        check();
      });
    },
    kill(sig = 'SIGTERM') {
      if (running) child.kill(sig);
    },
  };
  liveChildren.add(handle);
  return handle;
}

/**
 * For the root `afterEach` hook: kill every CLI child still running and throw an error naming
 * them, so the test that left them fails (and the next test starts clean).
 */
export async function assertNoChildrenLeft(): Promise<void> {
  const left = [...liveChildren];
  if (left.length === 0) return;
  // SIGTERM first, so a worker or server can remove its pid files; then SIGKILL.
  for (const child of left) killGroup(child.pid, 'SIGTERM');
  await Promise.all(
    left.map(async (child) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((resolve) => (timer = setTimeout(resolve, 5000)));
      await Promise.race([child.exited, late]);
      clearTimeout(timer);
      killGroup(child.pid, 'SIGKILL');
      await child.exited;
    }),
  );
  throw new Error(`test left child processes running (now killed): ${left.map((c) => `${c.title} (pid ${c.pid})`).join(', ')}`);
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone already
  }
}

// mocha interrupted or crashed: take the children down with it (they are in their own groups).
process.once('exit', () => {
  for (const child of liveChildren) killGroup(child.pid, 'SIGKILL');
});

/** The parent's environment without After's own variables, plus the test's. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AFTER_') && key !== 'PM2_HOME') env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Commands: programs the operator binds to job names in config, the way Periodic does
 * (`periodic-run-pipe`). A task names a command like any job and can only add what its
 * binding allows, so task writers run the programs the operator chose, not any program.
 *
 *   "commands": {"backup": {"argv": ["/usr/local/bin/backup", "--full"], "stdin": "data", "timeout": "1h"}}
 *   {"worker": "nightly", "date": "...", "job": "backup", "data": {"target": "s3://..."}}
 *
 * The run itself is exec's (program.ts): no shell, a minimal environment, bounded output, the
 * same result and exit-code rules, a default time limit, and the whole process tree ended.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandBinding } from '../config/types';
import { TaskInvalidError } from '../errors';
import { checkStringArguments, DEFAULT_PROGRAM_TIMEOUT_MS, programEnvironment, runProgram, type ExecResult } from './program';
import type { ProgramUser } from './program-user';
import type { JobContext, JobFunction, JobTask } from './run-job';

export interface CommandOptions {
  /** Limit of a run when neither the task nor the binding sets one; 0: none. @default 1 h */
  defaultTimeoutMs?: number;
  /** The user the program runs as (program-user.ts); none: the worker's own. */
  user?: ProgramUser;
}

/** The job function of command `name`. */
export function commandJob(name: string, binding: CommandBinding, options: CommandOptions = {}): JobFunction {
  const label = `command ${JSON.stringify(name)}`;
  const ownTimeoutMs = binding.timeout_ms ?? options.defaultTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  return function command(_task: JobTask, ctx: JobContext): Promise<ExecResult> {
    const added = taskArguments(name, binding, ctx.doc.job);
    return runProgram({
      argv: [...binding.argv, ...added],
      env: programEnvironment(ctx.doc._id, binding.env, options.user),
      ...(options.user ? { user: options.user } : {}),
      ...(binding.cwd !== null ? { cwd: binding.cwd } : {}),
      ...stdinOf(binding, ctx.doc),
      signal: ctx.signal,
      // The task's own `timeout`, when it has one, is applied by the runner through ctx.signal.
      timeoutMs: typeof ctx.doc.timeout === 'number' ? undefined : ownTimeoutMs,
      label,
      log: ctx.log,
      taskId: ctx.doc._id,
    });
  };
}

/**
 * What the task adds to the binding's argv: its `job.arguments` (the long form of `job`) when
 * the binding says `"arguments": "append"`, else nothing — and a task that tries is refused,
 * so it never believes an argument was used. `data` is never an argument of a command: it is
 * what `"stdin": "data"` sends.
 */
function taskArguments(name: string, binding: CommandBinding, job: unknown): string[] {
  const given = typeof job === 'object' && job !== null && !Array.isArray(job) ? (job as { arguments?: unknown }).arguments : undefined;
  if (given === undefined || (Array.isArray(given) && given.length === 0)) return [];
  const label = `command ${JSON.stringify(name)}`;
  if (!Array.isArray(given)) throw new TaskInvalidError('job.arguments', `job.arguments: ${label} takes an array of strings`);
  if (binding.arguments !== 'append') {
    throw new TaskInvalidError(
      'job.arguments',
      `job.arguments: ${label} takes no arguments from a task (its binding in config has no "arguments": "append")`,
    );
  }
  checkStringArguments(given, 'job.arguments', label);
  return given;
}

function stdinOf(binding: CommandBinding, doc: JobContext['doc']): { stdin?: string } {
  if (binding.stdin === 'data') return { stdin: `${JSON.stringify(doc.data ?? null)}\n` };
  if (binding.stdin === 'task') return { stdin: `${JSON.stringify(doc)}\n` };
  return {};
}

/**
 * What is wrong with a binding on this machine, checked when the jobs are loaded so a missing
 * program is found at start rather than when its task comes due: the program must exist and be
 * executable (a bare name is looked up in the PATH the program will get), the folder must exist.
 * Each problem names the field.
 */
export function commandProblems(name: string, binding: CommandBinding): string[] {
  const problems: string[] = [];
  const field = `commands.${name}`;
  const program = binding.argv[0]!;
  const env = programEnvironment('', binding.env);
  if (program.includes('/')) {
    const why = notExecutable(program);
    if (why) problems.push(`${field}.argv[0]: ${program} ${why}`);
  } else if (!findInPath(program, env.PATH ?? '')) {
    problems.push(`${field}.argv[0]: ${program} is not found in PATH (${env.PATH ?? ''})`);
  }
  if (binding.cwd !== null) {
    let isFolder = false;
    try {
      isFolder = fs.statSync(binding.cwd).isDirectory();
    } catch {
      // missing: reported below
    }
    if (!isFolder) problems.push(`${field}.cwd: ${binding.cwd} is not a folder`);
  }
  return problems;
}

/** How `after jobs` shows a command: its argv, what a task may add, and whom it runs as. */
export function describeCommand(binding: CommandBinding, user?: ProgramUser): string {
  const argv = binding.argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
  const extras = [
    binding.arguments === 'append' ? '+ task arguments' : '',
    binding.stdin !== 'none' ? `< task ${binding.stdin === 'data' ? 'data' : 'document'}` : '',
    user ? `as ${user.name}` : '',
  ].filter(Boolean);
  return `command: ${argv}${extras.length > 0 ? ` ${extras.join(' ')}` : ''}`;
}

function notExecutable(file: string): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) return 'is not a file';
    fs.accessSync(file, fs.constants.X_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not executable';
  }
}

function findInPath(program: string, searchPath: string): boolean {
  return searchPath
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => notExecutable(path.join(dir, program)) === undefined);
}

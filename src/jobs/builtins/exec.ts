/**
 * The `exec` built-in job: runs any program a task names, with an argument array.
 *
 *   {"job": {"name": "exec", "arguments": ["/usr/bin/env", "printf", "%s", "hi"]}}
 *
 * It lets everyone who can write a task run any program as the worker's user, so it is off
 * unless the operator turns it on (`"builtins": {"exec": true}`); a command (a program bound to
 * a name in config, commands.ts) is the way to let task writers run only chosen programs.
 * Task data is untrusted all the same: no shell, a minimal environment, stdin closed, bounded
 * output, a default time limit, and the program's whole process tree ended with it (program.ts).
 */
import { TaskInvalidError } from '../../errors';
import { checkStringArguments, DEFAULT_PROGRAM_TIMEOUT_MS, programEnvironment, runProgram, type ExecResult } from '../program';
import type { ProgramUser } from '../program-user';
import { jobArguments, type JobContext, type JobTask } from '../run-job';

export { EXEC_KILL_GRACE_MS, EXEC_OUTPUT_LIMIT, type ExecResult } from '../program';

export interface ExecOptions {
  /** Limit of a run whose task sets no `timeout`; 0: none. @default DEFAULT_PROGRAM_TIMEOUT_MS (1 h) */
  defaultTimeoutMs?: number;
  /** The user programs run as (program-user.ts); none: the worker's own. */
  user?: ProgramUser;
}

/** The exec job, with its default time limit. */
export function createExecJob(options: ExecOptions = {}): (task: JobTask, ctx: JobContext) => Promise<ExecResult> {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  return function exec(_task: JobTask, ctx: JobContext): Promise<ExecResult> {
    const argv = execArgv(jobArguments(ctx.doc));
    return runProgram({
      argv,
      env: programEnvironment(ctx.doc._id, {}, options.user),
      ...(options.user ? { user: options.user } : {}),
      signal: ctx.signal,
      // The task's own `timeout`, when it has one, is applied by the runner through ctx.signal.
      timeoutMs: typeof ctx.doc.timeout === 'number' ? undefined : defaultTimeoutMs,
      label: 'exec',
      log: ctx.log,
      taskId: ctx.doc._id,
    });
  };
}

/** The argument array, checked: the program (non-empty), then its arguments, all strings. */
export function execArgv(args: unknown[]): string[] {
  if (args.length === 0) {
    throw new TaskInvalidError(
      'job.arguments',
      'exec: job.arguments must name the program to run, then its arguments, e.g. ["/usr/bin/env", "printf", "hi"]',
    );
  }
  checkStringArguments(args, 'job.arguments', 'exec');
  if (args[0] === '') throw new TaskInvalidError('job.arguments', 'exec: job.arguments[0] (the program) is empty');
  return args as string[];
}

/**
 * `after task add|get|list|cancel|reschedule|delete|pause|resume|run`: conveniences over the
 * same HTTP requests a user could make with curl (pause, resume and run now: store/task-actions.ts). `add` checks the document with the worker's own
 * validation first, so a typo is a one-line error here rather than a task in "error" later.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { listTasks, type TaskFilter } from '../store/for-operators/task-queries';
import { CANCEL_INTENT, createTask, deleteTask, getTask, rescheduleIntent, updateTask } from '../store/for-operators/tasks';
import { openConnection } from '../store/connection';
import { parseTaskDate } from '../task/dates';
import { validateTask } from '../task/validate';
import { printable, printableValue, terminalJson } from '../text';
import { STATUSES, type TaskDoc } from '../types';
import { readWorkers } from '../store/for-operators/instances';
import type { Connection } from '../store/connection';
import { pauseTask, resumeTask, runTaskNow } from '../store/for-operators/task-actions';
import type { CliContext } from './context';
import { integerIn } from './options';
import { tasksTable } from './task-table';
import { hasTaskFlags, taskDocFromFlags, taskDocFromJson, type TaskFlags } from './task-input';

export { tasksTable } from './task-table';

interface AddOptions extends TaskFlags {
  json?: string;
  file?: string;
}

export function registerTaskCommands(program: Command, ctx: CliContext): void {
  const task = program.command('task').description('add, inspect, pause, resume, run now, cancel or reschedule tasks');
  const connect = () => openConnection(ctx.config());

  task
    .command('add')
    .description('create a task from flags, --json or --file; prints its id')
    .option('--json <doc>', 'the whole task document as JSON')
    .option('--file <file>', "read the task document from a JSON file ('-' for stdin)")
    .option('--worker <name>', 'worker that runs the task')
    .option('--date <date>', 'when to run, ISO 8601 (no zone = UTC), e.g. 2030-01-12T10:00:00Z')
    .option('--job <name>', 'job module to run (a file in the jobs folder)')
    .option('--args <json>', 'job arguments, a JSON array')
    .option('--data <json>', 'data for the job, any JSON')
    .option('--repeat <repeat>', 'JSON ({"days": 1}, {"cron": "0 9 * * 1-5"}) or an ISO 8601 duration (P1D)')
    .option('--cron <expr>', 'repeat on a cron schedule (5 or 6 fields); without --date it starts at the first fire time')
    .option('--every <duration>', 'repeat every compact duration: 1M7d, 1h30m, 90s (M months, m minutes)')
    .option('--tz <zone>', 'time zone of --cron or --every calendar units (IANA name, e.g. Europe/Paris)')
    .option('--jitter <duration>', 'spread each repeat date over [date, date + duration), at an offset stable per task and date: 5m, 30s, PT1M')
    .option('--delay <duration>', 'with --cron: run this long after each fire time, e.g. 30s, 5m')
    .option('--retry <json>', 'retry policy, e.g. {"limit": 3, "delay": {"minutes": 1}, "backoff": 2}')
    .option('--timeout <ms>', 'milliseconds a run may take')
    .option('--priority <n>', 'integer, default 0: higher starts first when more tasks are due than free run slots')
    .option('--after <ids>', 'run only once these tasks are done (comma-separated ids; repeatable)', (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    .option('--after-failure <what>', 'when a task it waits for fails or is canceled: error (default) or run')
    .option('--id <id>', 'choose the task id (a second add with the same id fails)')
    .action(async (opts: AddOptions) => {
      const doc = readTaskInput(opts);
      const validation = validateTask(doc as TaskDoc, { minRepeatMs: ctx.config().worker.min_repeat_ms, maxTaskBytes: ctx.config().worker.max_task_size });
      if (!validation.ok) throw new UsageError(`invalid task: ${validation.message}`);
      const created = await createTask(connect(), doc);
      ctx.out.line(printable(created.id));
    });

  task
    .command('get <id>')
    .description('print a task document')
    .action(async (id: string) => {
      ctx.out.line(terminalJson(await getTask(connect(), id), 2));
    });

  task
    .command('list')
    .description('list tasks by date')
    .option('--worker <name>', 'only this worker')
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
    .option('--from <date>', 'only tasks dated at or after this date (compared as stored)')
    .option('--to <date>', 'only tasks dated at or before this date')
    .option('--limit <n>', 'at most this many tasks', integerIn(1, 100_000), 100)
    .option('--json', 'print the documents as a JSON array')
    .action(async (opts: TaskFilter & { json?: boolean }) => {
      if (opts.status !== undefined && !(STATUSES as readonly string[]).includes(opts.status)) {
        throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(opts.status)}`);
      }
      const { json, ...filter } = opts;
      const tasks = await listTasks(connect(), filter);
      if (json) {
        ctx.out.line(terminalJson(tasks, 2));
        return;
      }
      if (tasks.length === 0) {
        ctx.out.line('no tasks');
        return;
      }
      for (const line of tasksTable(tasks)) ctx.out.line(line);
    });

  task
    .command('cancel <id>')
    .description('ask the worker to drop the task (and abort it if it runs)')
    .action(async (id: string) => {
      const updated = await updateTask(connect(), id, (doc) => ({ ...doc, status: 'cancel' }), CANCEL_INTENT);
      ctx.out.line(`${printable(updated._id)} ${printableValue(updated.status)}`);
    });

  task
    .command('reschedule <id> <date>')
    .description('move a task to a new date')
    .action(async (id: string, date: string) => {
      const parsed = parseTaskDate(date);
      if (!parsed.ok) throw new UsageError(`invalid date: ${parsed.message}`);
      const updated = await updateTask(connect(), id, (doc) => ({ ...doc, status: 'reschedule', date }), rescheduleIntent(date));
      ctx.out.line(`${printable(updated._id)} ${printableValue(updated.status)} ${printableValue(updated.date)}`);
    });

  task
    .command('pause <id>')
    .description('pause a task: its worker drops it (a run in progress finishes); `after task resume` resumes it')
    .action(async (id: string) => {
      const updated = await pauseTask(connect(), id);
      ctx.out.line(`${printable(updated._id)} ${printableValue(updated.status)}`);
    });

  task
    .command('resume <id>')
    .description('resume a paused task (status waiting): a date that passed meanwhile runs at once')
    .action(async (id: string) => {
      const updated = await resumeTask(connect(), id);
      ctx.out.line(`${printable(updated._id)} ${printableValue(updated.status)} ${printableValue(updated.date)}`);
    });

  task
    .command('run <id>')
    .description('run a task once now: a repeating task runs one extra time and keeps its next date')
    .action(async (id: string) => {
      const conn = connect();
      const updated = await runTaskNow(conn, id);
      const note = await workerNote(conn, updated.worker);
      const series = updated.repeat !== undefined ? `; its series keeps its next date ${printableValue(updated.date)}` : '';
      ctx.out.line(`${printable(updated._id)} runs now${series}${note}`);
    });

  task
    .command('delete <id>')
    .description('delete a task (a running worker drops it)')
    .action(async (id: string) => {
      const deleted = await deleteTask(connect(), id);
      ctx.out.line(`${printable(deleted.id)} deleted`);
    });
}

/** The document to create: from `--json`, from `--file` (or stdin), or from flags; never a mix. */
export function readTaskInput(opts: AddOptions, readStdin: () => string = () => fs.readFileSync(0, 'utf8')): Record<string, unknown> {
  const sources = [opts.json !== undefined, opts.file !== undefined, hasTaskFlags(opts)].filter(Boolean).length;
  if (sources > 1) throw new UsageError('give the task as --json, --file or flags (--worker --date --job ...), not several');
  if (opts.json !== undefined) return taskDocFromJson(opts.json, '--json');
  if (opts.file !== undefined) {
    const file = opts.file;
    let text: string;
    try {
      text = file === '-' ? readStdin() : fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
    }
    return taskDocFromJson(text, file === '-' ? 'stdin' : file);
  }
  return taskDocFromFlags(opts);
}

/** Why a task asked to run now may not: its worker is paused or has no live instance. */
async function workerNote(conn: Connection, worker: unknown): Promise<string> {
  if (typeof worker !== 'string') return '';
  const { instances, paused } = await readWorkers(conn);
  if (paused.includes(worker)) return `; worker ${printable(worker)} is paused: it runs once the worker is resumed`;
  if (!instances.some((instance) => instance.live && instance.worker === worker)) return `; no live instance of worker ${printable(worker)} runs now: it runs when one starts`;
  return '';
}

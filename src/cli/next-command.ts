/**
 * `after next <task-id | repeat-json>`: the next dates a schedule runs on, in UTC and in its
 * time zone (like `systemd-analyze calendar`), so a user checks a schedule before posting it.
 * The dates come from the worker's own date math (src/task/schedule-preview.ts).
 */
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { getTask } from '../store/for-operators/tasks';
import { openConnection } from '../store/connection';
import { parseTaskDate } from '../task/dates';
import { printable } from '../text';
import { repeatSpecFromFlags } from '../task/repeat-flags';
import { previewSchedule, type PreviewSource, type SchedulePreview } from '../task/schedule-preview';
import type { TaskDoc } from '../types';
import type { CliContext } from './context';
import { integerIn } from './options';
import { formatTable } from './output';

interface NextOptions {
  count: number;
  from?: string;
  cron?: string;
  every?: string;
  tz?: string;
  jitter?: string;
  delay?: string;
}

const EXAMPLES = `
Examples:
  after next '{"cron": "30 2 * * *", "timezone": "Europe/Paris"}' --from 2026-03-27
  after next --cron '0 9 * * 1-5' --tz America/New_York -n 5
  after next --every 1M --tz Australia/Sydney --from 2026-01-31T09:00:00+11:00
  after next P1D
  after next --cron '0 * * * *' --delay 30s     every hour at :00:30
  after next my-task-id         a stored task: its pending date, then its repeat (jitter included)`;

export function registerNextCommand(program: Command, ctx: CliContext): void {
  program
    .command('next [schedule]')
    .description('print the next run dates of a task (by id) or of a repeat (JSON or ISO 8601 duration), in UTC and in its time zone')
    .option('-n, --count <n>', 'how many dates', integerIn(1, 1000), 10)
    .option('--from <date>', 'count from this date instead of now (ISO 8601, no zone = UTC)')
    .option('--cron <expr>', 'a cron schedule instead of <schedule>, e.g. "0 9 * * 1-5"')
    .option('--every <duration>', 'an interval instead of <schedule>, e.g. 1M7d, 1h30m, 90s')
    .option('--tz <zone>', 'IANA time zone for --cron or --every, e.g. Europe/Paris')
    .option('--delay <duration>', 'with --cron: each date this long after the fire time, e.g. 30s')
    .option('--jitter <duration>', 'the repeat\'s jitter (each task\'s own offsets show with a task id)')
    .addHelpText('after', EXAMPLES)
    .action(async (schedule: string | undefined, opts: NextOptions) => {
      const fromMs = opts.from === undefined ? nextWholeSecond(Date.now()) : parseFrom(opts.from);
      const source = await resolveSource(schedule, opts, (id) => getTask(openConnection(ctx.config()), id));
      const result = previewSchedule(source, { count: opts.count, fromMs });
      if (!result.ok) throw new UsageError(`invalid ${'task' in source ? 'task' : 'repeat'}: ${result.message}`);
      for (const line of previewLines(result.preview)) ctx.out.line(line);
    });
}

/**
 * What `<schedule>` names: JSON (a repeat, or a whole task document when it has `date` or
 * `repeat`), an ISO 8601 duration (`P1D`), or else the id of a stored task.
 */
export async function resolveSource(
  schedule: string | undefined,
  opts: Pick<NextOptions, 'cron' | 'every' | 'tz' | 'jitter' | 'delay'>,
  fetchTask: (id: string) => Promise<TaskDoc>,
): Promise<PreviewSource> {
  const fromFlags = repeatSpecFromFlags({ cron: opts.cron, every: opts.every, timezone: opts.tz, jitter: opts.jitter, delay: opts.delay });
  if (!fromFlags.ok) throw new UsageError(fromFlags.message);
  if (fromFlags.repeat !== undefined) {
    if (schedule !== undefined) throw new UsageError('give a <schedule> argument or --cron/--every, not both');
    return { repeat: fromFlags.repeat };
  }
  if (schedule === undefined || schedule.trim() === '') {
    throw new UsageError('name a schedule: a task id, a repeat as JSON, an ISO 8601 duration, or --cron/--every');
  }
  const text = schedule.trim();
  if (text.startsWith('{') || text.startsWith('"')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`<schedule> is not valid JSON: ${(err as Error).message}`);
    }
    const isTask = typeof value === 'object' && value !== null && ('date' in value || 'repeat' in value);
    return isTask ? { task: value as TaskDoc } : { repeat: value };
  }
  if (/^P(\d|T\d)/.test(text)) return { repeat: text };
  return { task: await fetchTask(text) };
}

/** The printed form: a summary line, a table (# / UTC / local), and how the series ends. */
export function previewLines(preview: SchedulePreview): string[] {
  // The summary and the end describe a stored task's repeat, zone and status: document text.
  const lines = [printable(preview.summary)];
  if (preview.rows.length > 0) {
    const rows = preview.rows.map((row, index) => [
      String(index + 1),
      row.utc,
      row.overdue ? `${row.local}  (overdue: runs at once)` : row.local,
    ]);
    lines.push(...formatTable(['#', 'UTC', preview.zone], rows));
  }
  if (preview.end !== undefined) lines.push(printable(preview.end));
  return lines;
}

function parseFrom(text: string): number {
  const parsed = parseTaskDate(text);
  if (!parsed.ok) throw new UsageError(`--from: ${parsed.message}`);
  return parsed.ms;
}

/** Now, rounded up to a whole second: an interval series from "now" then reads cleanly. */
function nextWholeSecond(ms: number): number {
  return Math.ceil(ms / 1000) * 1000;
}

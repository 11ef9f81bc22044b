/**
 * The dates a schedule will run on, for `after next` (like `systemd-analyze calendar`): a user
 * checks a repeat before posting it, or asks when a stored task runs next. Pure: the same
 * parseRepeat and nextRepeat the worker uses, with `fromMs` standing for now, so what is
 * printed is what the worker will do.
 *
 * - For a task: its pending `date` first (marked overdue when it is before `fromMs`: the
 *   worker runs it at once), then the dates its repeat leads to, each run assumed to start
 *   on time (an overdue one at `fromMs`) and to end at once. `limit` counts the runs the
 *   task has already made (`repetitions`).
 * - For a repeat alone: the series of a task whose first date is `fromMs`. An interval
 *   repeat starts at `fromMs` itself; a cron repeat at its first fire time at or after it
 *   (post the task with that `date` to follow the pattern from the start), plus its `delay`.
 * - A `jitter` moves each date by an offset derived from the task's id: a stored task (or a
 *   document with an `_id`) shows its own jittered dates; a repeat alone shows the series dates
 *   and says how far each may move.
 */
import { ACTIVE_STATUSES, type TaskDoc } from '../types';
import { formatDate, parseTaskDate, quoteValue } from './dates';
import { durationToObject } from './duration';
import { parseRepeat, type IntervalRepeat, type Repeat } from './repeat';
import { firstRunDate, nextRepeat } from './series';
import { validateTask } from './validate';
import { formatInZone } from './zones';

export interface PreviewOptions {
  /** Rows wanted. */
  count: number;
  /** What "now" is for the preview (epoch ms). */
  fromMs: number;
}

export interface ScheduleRow {
  dateMs: number;
  /** The date as a task document stores it: `2026-03-29T01:00:00.000Z`. */
  utc: string;
  /** The same instant on a clock in the schedule's zone: `Sun 2026-03-29 03:00:00 +02:00`. */
  local: string;
  /** Before `fromMs`: the worker runs it at once. */
  overdue: boolean;
}

export interface SchedulePreview {
  /** `cron "0 9 * * 1-5" in Europe/Paris`, `every 1 month 7 days (calendar in UTC)`, then limit, until, misfire. */
  summary: string;
  /** The zone of the `local` column: the repeat's, or UTC. */
  zone: string;
  rows: ScheduleRow[];
  /** Why there are fewer rows than asked, when the schedule ends: `limit 3 reached`. */
  end?: string;
}

export type PreviewSource = { task: TaskDoc } | { repeat: unknown };
export type PreviewResult = { ok: true; preview: SchedulePreview } | { ok: false; message: string };

/** Never throws: an invalid task or repeat is `{ok: false}` with the validator's message. */
export function previewSchedule(source: PreviewSource, options: PreviewOptions): PreviewResult {
  return 'task' in source ? previewTask(source.task, options) : previewRepeat(source.repeat, options);
}

function previewRepeat(value: unknown, options: PreviewOptions): PreviewResult {
  const parsed = parseRepeat(value);
  if (!parsed.ok) return parsed;
  const repeat = parsed.repeat;
  // No task id, no jitter offsets: the series dates themselves.
  const first = repeat.kind === 'cron' ? firstRunDate(repeat, undefined, options.fromMs) : options.fromMs;
  const untilMs = repeat.untilMs ?? Infinity;
  if (first === null || first > untilMs) {
    return { ok: true, preview: { summary: describeRepeat(repeat, false), zone: zoneOf(repeat), rows: [], end: endReason(repeat, 0) } };
  }
  return { ok: true, preview: walk(repeat, { anchorMs: first, dateMs: first, repetitionsBefore: 0 }, options) };
}

function previewTask(doc: TaskDoc, options: PreviewOptions): PreviewResult {
  const validated = validateTask(doc);
  if (!validated.ok) return { ok: false, message: validated.message };
  const task = validated.task;
  const status = task.status;
  if (!ACTIVE_STATUSES.includes(status) || status === 'cancel') {
    const summary = task.repeatParsed ? describeRepeat(task.repeatParsed) : 'runs once';
    const zone = task.repeatParsed ? zoneOf(task.repeatParsed) : 'UTC';
    return { ok: true, preview: { summary, zone, rows: [], end: `the task is ${status}: it will not run again unless set back to waiting` } };
  }
  if (!task.repeatParsed) {
    return { ok: true, preview: { summary: 'runs once', zone: 'UTC', rows: [row(task.dateMs, 'UTC', options.fromMs)].slice(0, options.count) } };
  }
  const anchor = parseTaskDate(doc.anchor_date);
  const repetitions = typeof doc.repetitions === 'number' && Number.isSafeInteger(doc.repetitions) && doc.repetitions > 0 ? doc.repetitions : 0;
  const taskId = typeof doc._id === 'string' && doc._id !== '' ? doc._id : undefined;
  return {
    ok: true,
    preview: walk(
      task.repeatParsed,
      { anchorMs: anchor.ok ? anchor.ms : task.dateMs, dateMs: task.dateMs, repetitionsBefore: repetitions, taskId },
      options,
    ),
  };
}

/** Follow a series from its pending date, as the worker would, up to `count` rows. */
function walk(
  repeat: Repeat,
  start: { anchorMs: number; dateMs: number; repetitionsBefore: number; taskId?: string },
  options: PreviewOptions,
): SchedulePreview {
  const zone = zoneOf(repeat);
  const rows: ScheduleRow[] = [];
  let dateMs = start.dateMs;
  let repetitions = start.repetitionsBefore;
  let ended = false;
  while (rows.length < options.count) {
    rows.push(row(dateMs, zone, options.fromMs));
    repetitions++;
    // The run starts on time, or at `fromMs` when overdue, and ends at once.
    const startedAtMs = Math.max(dateMs, options.fromMs);
    const next = nextRepeat(repeat, { anchorMs: start.anchorMs, dateMs, startedAtMs, repetitions, nowMs: startedAtMs, taskId: start.taskId });
    if (next === null) {
      ended = true;
      break;
    }
    dateMs = next.dateMs;
  }
  const preview: SchedulePreview = { summary: describeRepeat(repeat, start.taskId !== undefined), zone, rows };
  if (ended) preview.end = endReason(repeat, repetitions);
  return preview;
}

function row(dateMs: number, zone: string, fromMs: number): ScheduleRow {
  return { dateMs, utc: formatDate(dateMs), local: formatInZone(zone, dateMs), overdue: dateMs < fromMs };
}

function zoneOf(repeat: Repeat): string {
  return repeat.timezone ?? 'UTC';
}

function endReason(repeat: Repeat, runs: number): string {
  if (repeat.limit !== undefined && runs >= repeat.limit) return `the series ends: limit ${repeat.limit} reached`;
  if (repeat.untilMs !== undefined) return `the series ends: no date left before until ${formatDate(repeat.untilMs)}`;
  return 'the series ends: no date left before year 10000';
}

/**
 * One line a user recognises their schedule in. `jitterShown`: the dates listed include the
 * task's jitter offsets (a repeat alone has no task id to derive them from).
 */
export function describeRepeat(repeat: Repeat, jitterShown = true): string {
  const parts = [repeat.kind === 'cron' ? `cron ${quoteValue(repeat.pattern)} in ${repeat.timezone}` : describeInterval(repeat)];
  if (repeat.kind === 'cron' && repeat.delayMs !== undefined) parts.push(`delay ${describeMs(repeat.delayMs)}`);
  if (repeat.jitterMs !== undefined) {
    parts.push(jitterShown ? `jitter ${describeMs(repeat.jitterMs)}` : `jitter ${describeMs(repeat.jitterMs)} (not shown: each task's own offset depends on its id)`);
  }
  if (repeat.limit !== undefined) parts.push(`limit ${repeat.limit}`);
  if (repeat.untilMs !== undefined) parts.push(`until ${formatDate(repeat.untilMs)}`);
  parts.push(`misfire ${repeat.misfire}`);
  return parts.join(', ');
}

/** `30 s`, `5 min`, `1 h 30 min`, `250 ms`. */
function describeMs(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000], ['ms', 1]];
  const parts: string[] = [];
  let left = ms;
  for (const [name, size] of units) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)} ${name}`);
      left %= size;
    }
  }
  return parts.length > 0 ? parts.join(' ') : '0 ms';
}

/** `every 1 month 7 days (calendar in Europe/Paris)`; the zone only matters to calendar units. */
function describeInterval(repeat: IntervalRepeat): string {
  const units = Object.entries(durationToObject(repeat.every)).map(([unit, amount]) => `${amount} ${amount === 1 ? unit.slice(0, -1) : unit}`);
  const every = repeat.every;
  const calendar = every.years + every.months + every.weeks + every.days > 0;
  return `every ${units.join(' ')}${calendar ? ` (calendar in ${repeat.timezone ?? 'UTC'})` : ''}`;
}

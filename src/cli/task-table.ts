/**
 * `after task list` as a table, one row per task with what PerfectSched's `list` shows: id,
 * worker, job, the schedule (repeat or cron with its zone), the next date, the status and the
 * last run's outcome. Every cell comes from the document as stored; a field a user mangled
 * shows as it is rather than breaking the table.
 */
import { parseTaskDate } from '../task/dates';
import { durationToObject } from '../task/duration';
import { parseRepeat } from '../task/repeat';
import type { TaskDoc } from '../types';
import { formatTable } from './output';

const FINISHED = ['done', 'error', 'canceled', 'cancel'];
const ERROR_WIDTH = 60;

export function tasksTable(tasks: readonly TaskDoc[]): string[] {
  const rows = tasks.map((t) => [t._id, text(t.worker), jobName(t.job), describeSchedule(t.repeat), nextDate(t), statusOf(t), lastOutcome(t)]);
  return formatTable(['ID', 'WORKER', 'JOB', 'SCHEDULE', 'NEXT', 'STATUS', 'LAST RUN'], rows);
}

/** `once`, `every 1M7d (UTC)`, `cron 0 9 * * 1-5 (Europe/Paris)`, with `limit` and `until` when set. */
export function describeSchedule(repeat: unknown): string {
  if (repeat === undefined) return 'once';
  const parsed = parseRepeat(repeat);
  if (!parsed.ok) return `invalid: ${text(repeat)}`;
  const r = parsed.repeat;
  const base = r.kind === 'cron' ? `cron ${r.pattern} (${r.timezone})` : `every ${compactDuration(durationToObject(r.every))} (${r.timezone ?? 'UTC'})`;
  const extras: string[] = [];
  if (r.limit !== undefined) extras.push(`limit ${r.limit}`);
  if (r.untilMs !== undefined) extras.push(`until ${new Date(r.untilMs).toISOString()}`);
  return extras.length > 0 ? `${base}, ${extras.join(', ')}` : base;
}

/** When it runs next: the earlier of `date` and a `run_now`; nothing for a finished task. */
export function nextDate(doc: TaskDoc): string {
  if (FINISHED.includes(statusOf(doc))) return '-';
  const runNow = parseTaskDate(doc.run_now);
  const date = parseTaskDate(doc.date);
  if (runNow.ok && (!date.ok || runNow.ms < date.ms)) return `${text(doc.run_now)} (run now)`;
  return text(doc.date);
}

/** `success`, `failure: <message>`, `canceled`, or `never` (no run yet). */
export function lastOutcome(doc: TaskDoc): string {
  const last = Array.isArray(doc.history) ? doc.history[0] : undefined;
  if (last && typeof last === 'object') return last.status === 'error' ? failure(last.error?.message) : 'success';
  if (doc.last_run === undefined) return 'never';
  if (doc.status === 'canceled') return 'canceled';
  return doc.status === 'error' || doc.error !== undefined ? failure(doc.error?.message) : 'success';
}

function failure(message: unknown): string {
  if (typeof message !== 'string' || message === '') return 'failure';
  return `failure: ${message.length > ERROR_WIDTH ? `${message.slice(0, ERROR_WIDTH - 3)}...` : message}`;
}

function statusOf(doc: TaskDoc): string {
  return doc.status === undefined ? 'waiting' : text(doc.status);
}

/** Largest unit first: `1M7d`, `1h30m`, `500ms` (M months, m minutes). */
function compactDuration(units: Partial<Record<string, number>>): string {
  const letters: Record<string, string> = { years: 'y', months: 'M', weeks: 'w', days: 'd', hours: 'h', minutes: 'm', seconds: 's', milliseconds: 'ms' };
  return Object.entries(units).map(([unit, amount]) => `${amount}${letters[unit]}`).join('') || '0ms';
}

function jobName(job: unknown): string {
  if (typeof job === 'string') return job;
  if (typeof job === 'object' && job !== null && typeof (job as { name?: unknown }).name === 'string') {
    return (job as { name: string }).name;
  }
  return text(job);
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '-';
  return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
}

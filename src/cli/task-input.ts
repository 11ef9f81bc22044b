/**
 * Pure parsing of `after task add` input into a task document: either one JSON document
 * (`--json`, `--file`) or flags. Problems are UsageErrors that name the flag.
 */
import { UsageError } from '../errors';
import { cronFireAfter } from '../task/cron';
import { repeatSpecFromFlags } from '../task/repeat';
import type { TaskDoc } from '../types';

export interface TaskFlags {
  worker?: string;
  date?: string;
  job?: string;
  args?: string;
  data?: string;
  repeat?: string;
  cron?: string;
  every?: string;
  tz?: string;
  retry?: string;
  timeout?: string;
  id?: string;
}

/** The flags that build a document; any of them beside `--json`/`--file` is ambiguous. */
export const TASK_FLAG_NAMES: readonly (keyof TaskFlags)[] = [
  'worker',
  'date',
  'job',
  'args',
  'data',
  'repeat',
  'cron',
  'every',
  'tz',
  'retry',
  'timeout',
  'id',
];

/** Parse a JSON flag value, naming the flag when it is not JSON. */
export function parseJsonFlag(flag: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${flag} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A whole task document given as JSON text (`--json`, `--file`, stdin). */
export function taskDocFromJson(text: string, source: string): Partial<TaskDoc> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${source} must hold one JSON object (a task document)`);
  }
  return withDefaults(parsed as Partial<TaskDoc>);
}

/** A task document built from `--worker --date --job ...` flags. */
export function taskDocFromFlags(flags: TaskFlags, nowMs: number = Date.now()): Partial<TaskDoc> {
  const schedule = repeatSpecFromFlags({ cron: flags.cron, every: flags.every, timezone: flags.tz });
  if (!schedule.ok) throw new UsageError(schedule.message);
  if (schedule.repeat !== undefined && flags.repeat !== undefined) {
    throw new UsageError('--repeat: give the schedule once (--repeat, or --cron/--every with --tz)');
  }
  if (flags.cron !== undefined && flags.date === undefined) {
    // A cron task with no date starts on the pattern's first fire time from now.
    const first = cronFireAfter(flags.cron, flags.tz ?? 'UTC', nowMs - 1);
    if (first !== null) flags = { ...flags, date: new Date(first).toISOString() };
  }
  for (const required of ['worker', 'date', 'job'] as const) {
    if (!flags[required]) throw new UsageError(`--${required} is required (or give the whole document with --json or --file)`);
  }
  const job: Record<string, unknown> = { name: flags.job };
  if (flags.args !== undefined) {
    const args = parseJsonFlag('args', flags.args);
    if (!Array.isArray(args)) throw new UsageError('--args must be a JSON array, e.g. \'["a", 1]\'');
    job.arguments = args;
  }
  const doc: Partial<TaskDoc> = { worker: flags.worker, date: flags.date, job };
  if (flags.id !== undefined) {
    if (!flags.id) throw new UsageError('--id must not be empty');
    doc._id = flags.id;
  }
  if (flags.data !== undefined) doc.data = parseJsonFlag('data', flags.data);
  if (flags.repeat !== undefined) doc.repeat = parseRepeat(flags.repeat);
  if (schedule.repeat !== undefined) doc.repeat = schedule.repeat;
  if (flags.retry !== undefined) doc.retry = parseJsonFlag('retry', flags.retry);
  if (flags.timeout !== undefined) doc.timeout = parseTimeout(flags.timeout);
  return withDefaults(doc);
}

/** `--repeat` takes a JSON object (`{"days": 1}`, `{"cron": "..."}`) or an ISO 8601 duration. */
export function parseRepeat(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('"')) return parseJsonFlag('repeat', trimmed);
  return trimmed;
}

function parseTimeout(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`--timeout must be a positive number of milliseconds, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** A new task starts as "waiting" (SPEC §3) unless the document says otherwise. */
function withDefaults(doc: Partial<TaskDoc>): Partial<TaskDoc> {
  return doc.status === undefined ? { ...doc, status: 'waiting' } : doc;
}

/** True when any document-building flag was given. */
export function hasTaskFlags(flags: TaskFlags): boolean {
  return TASK_FLAG_NAMES.some((name) => flags[name] !== undefined);
}

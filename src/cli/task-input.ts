/**
 * Pure parsing of `after task add` input into a task document: either one JSON document
 * (`--json`, `--file`) or flags. Problems are UsageErrors that name the flag.
 */
import { randomUUID } from 'node:crypto';
import { UsageError } from '../errors';
import { parseRepeat as parseRepeatSpec } from '../task/repeat';
import { repeatSpecFromFlags } from '../task/repeat-flags';
import { firstRunDate } from '../task/series';
import { AFTER_FAILURES, type TaskDoc } from '../types';

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
  /** `--jitter 5m`: spread each repeat date over [date, date + 5 min). */
  jitter?: string;
  /** `--delay 30s`: run 30 s after each cron time. */
  delay?: string;
  retry?: string;
  timeout?: string;
  /** `--priority 5`: higher starts first when more tasks are due than free slots. */
  priority?: string;
  /** `--after import,fx-rates` (or the flag given several times): run once these are done. */
  after?: string | string[];
  /** `--after-failure run`: run even if a task it waits for fails. */
  afterFailure?: string;
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
  'jitter',
  'delay',
  'retry',
  'timeout',
  'priority',
  'after',
  'afterFailure',
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
  const schedule = repeatSpecFromFlags({ cron: flags.cron, every: flags.every, timezone: flags.tz, jitter: flags.jitter, delay: flags.delay });
  if (!schedule.ok) throw new UsageError(schedule.message);
  if (schedule.repeat !== undefined && flags.repeat !== undefined) {
    throw new UsageError('--repeat: give the schedule once (--repeat, or --cron/--every with --tz, --jitter, --delay)');
  }
  if (flags.cron !== undefined && flags.date === undefined) {
    // A cron task with no date starts on the pattern's first fire time from now (plus its delay),
    // moved by its own jitter offset, which comes from its id: the id is chosen here.
    if (flags.jitter !== undefined && flags.id === undefined) flags = { ...flags, id: randomUUID().replace(/-/g, '') };
    const parsed = schedule.repeat === undefined ? undefined : parseRepeatSpec(schedule.repeat);
    const first = parsed?.ok ? firstRunDate(parsed.repeat, flags.id, nowMs) : null;
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
  if (flags.priority !== undefined) doc.priority = parsePriority(flags.priority);
  if (flags.after !== undefined) doc.after = parseAfter(flags.after);
  if (flags.afterFailure !== undefined) {
    if (!(AFTER_FAILURES as readonly string[]).includes(flags.afterFailure)) {
      throw new UsageError(`--after-failure must be one of ${AFTER_FAILURES.join(', ')}, got ${JSON.stringify(flags.afterFailure)}`);
    }
    if (flags.after === undefined) throw new UsageError('--after-failure: needs --after');
    doc.after_failure = flags.afterFailure;
  }
  return withDefaults(doc);
}

function parsePriority(text: string): number {
  const value = Number(text);
  if (!/^\s*[+-]?\d+\s*$/.test(text) || !Number.isSafeInteger(value)) {
    throw new UsageError(`--priority must be an integer (higher runs first; the default is 0), got ${JSON.stringify(text)}`);
  }
  return value;
}

/** `--after a,b --after c`: the ids, in order, each once. */
function parseAfter(value: string | string[]): string[] {
  const ids = (Array.isArray(value) ? value : [value]).flatMap((text) => text.split(',')).map((id) => id.trim());
  if (ids.length === 0 || ids.some((id) => id === '')) {
    throw new UsageError('--after must name task ids, separated by commas (e.g. --after import-2026-11,fx-rates)');
  }
  return [...new Set(ids)];
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

/** A new task starts as "waiting" (docs/spec.md §3) unless the document says otherwise. */
function withDefaults(doc: Partial<TaskDoc>): Partial<TaskDoc> {
  return doc.status === undefined ? { ...doc, status: 'waiting' } : doc;
}

/** True when any document-building flag was given. */
export function hasTaskFlags(flags: TaskFlags): boolean {
  return TASK_FLAG_NAMES.some((name) => flags[name] !== undefined);
}

/**
 * A crontab file as task documents: each schedule line becomes an `exec` task of one worker
 * with a cron repeat, dated at the schedule's next fire time. Pure: `nowMs` is passed in.
 *
 * Read like cron reads a user crontab (crontab(5)): blank lines and `#` comments are skipped,
 * `NAME=value` lines set the environment and are skipped too, except `CRON_TZ` (and `TZ`),
 * which set the time zone of the lines after them, as cronie does. `@daily`-style names map to
 * their five fields; `@reboot` has no date and is rejected. A `%` in a command is cron's
 * "rest is stdin", which `exec` has no equivalent for: rejected unless escaped (`\%`).
 */
import { createHash } from 'node:crypto';
import { cronFireAfter } from '../task/cron';
import { parseTimeZone } from '../task/zones';
import { validateTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { splitCommand } from './command-line';

export interface ImportCandidate {
  /** 1-based line in the file. */
  line: number;
  doc: TaskDoc & { _id: string };
}

export interface ImportRejection {
  line: number;
  reason: string;
}

export interface ParsedImport {
  candidates: ImportCandidate[];
  rejected: ImportRejection[];
}

export interface CrontabOptions {
  worker: string;
  /** Zone of lines before any CRON_TZ line. @default "UTC" */
  timezone?: string;
  /** Import lines that need a shell as `["/bin/sh", "-c", command]`. @default false */
  shell?: boolean;
  nowMs: number;
  /** Recorded in each task's `imported.from`. */
  source?: string;
}

export const CRON_NICKNAMES: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const ENV_LINE = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;

export function parseCrontab(text: string, options: CrontabOptions): ParsedImport {
  const candidates: ImportCandidate[] = [];
  const rejected: ImportRejection[] = [];
  let zone = options.timezone ?? 'UTC';
  let zoneProblem: string | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const env = ENV_LINE.exec(trimmed);
    if (env) {
      if (env[1] === 'CRON_TZ' || env[1] === 'TZ') {
        const value = unquote(env[2]!.trim());
        const parsed = parseTimeZone(value, env[1]);
        zone = parsed.ok ? parsed.zone : zone;
        zoneProblem = parsed.ok ? undefined : `${env[1]} on line ${line}: ${parsed.message}`;
      }
      return;
    }
    if (zoneProblem) return void rejected.push({ line, reason: zoneProblem });
    const result = crontabLineToTask(trimmed, { ...options, timezone: zone });
    if ('reason' in result) rejected.push({ line, reason: result.reason });
    else candidates.push({ line, doc: { ...result.doc, imported: { from: options.source ?? 'crontab', line } } });
  });
  return { candidates, rejected };
}

/** One schedule line (already trimmed) as a task, or why it cannot be one. */
export function crontabLineToTask(text: string, options: CrontabOptions & { timezone: string }): { doc: TaskDoc & { _id: string } } | { reason: string } {
  let pattern: string;
  let command: string;
  if (text.startsWith('@')) {
    const [nickname = '', ...rest] = text.split(/\s+/);
    if (nickname === '@reboot') return { reason: '@reboot has no date to schedule (After runs tasks at dates)' };
    const fields = CRON_NICKNAMES[nickname];
    if (!fields) return { reason: `unknown schedule ${nickname} (known: @reboot, ${Object.keys(CRON_NICKNAMES).join(', ')})` };
    pattern = fields;
    command = rest.join(' ');
  } else {
    const match = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(text);
    if (!match) return { reason: 'not a crontab line (five time fields, then a command)' };
    pattern = match.slice(1, 6).join(' ');
    command = match[6]!;
  }
  command = command.trim();
  if (command === '') return { reason: 'no command after the schedule' };
  if (/(^|[^\\])%/.test(command)) return { reason: "'%' (cron's stdin marker) is not supported; escape it as \\% for a literal %" };
  command = command.replace(/\\%/g, '%');

  let argv: string[];
  const split = splitCommand(command);
  if (split.ok) argv = split.argv;
  else if (options.shell && split.reason.startsWith('needs a shell')) argv = ['/bin/sh', '-c', command];
  else return { reason: `command ${split.reason}${split.reason.startsWith('needs a shell') ? ' (import it with --shell to run it with /bin/sh -c)' : ''}` };

  const repeat = { cron: pattern, timezone: options.timezone };
  // The first run is the next fire time; the cron repeat takes it from there.
  let firstMs: number | null;
  try {
    firstMs = cronFireAfter(pattern, options.timezone, options.nowMs);
  } catch {
    firstMs = null;
  }
  const doc: TaskDoc & { _id: string } = {
    _id: stableId('cron', [options.worker, options.timezone, pattern, command, options.shell && !split.ok ? 'shell' : 'exec']),
    worker: options.worker,
    date: firstMs === null ? '' : new Date(firstMs).toISOString(),
    job: { name: 'exec', arguments: argv },
    repeat,
    status: 'waiting',
  };
  const valid = validateTask(doc);
  if (!valid.ok) return { reason: valid.field === 'date' && firstMs === null ? `schedule "${pattern}": ${validateRepeatOnly(repeat)}` : valid.message };
  return { doc };
}

/** Why the repeat is invalid, when it is the cause of a missing first date. */
function validateRepeatOnly(repeat: { cron: string; timezone: string }): string {
  const valid = validateTask({ _id: 'x', worker: 'x', date: '2000-01-01', job: 'exec', repeat });
  return valid.ok ? 'never fires' : valid.message;
}

/** `<prefix>-<20 hex>` from the parts: the same line imported again gets the same id. */
export function stableId(prefix: string, parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return `${prefix}-${hash.digest('hex').slice(0, 20)}`;
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}

/** The schedule flags of the CLI (`--cron`, `--every`, `--tz`, `--jitter`, `--delay`) turned into a `repeat`. */
import { checkCronPattern } from './cron';
import { durationToObject, parseCompactDuration, parseFixedDurationMs } from './duration';
import { parseRepeat } from './repeat';
import { parseTimeZone } from './zones';

/** The schedule flags of `after task add` (and of any tool that builds a `repeat`). */
export interface RepeatFlags {
  /** `--cron "0 9 * * 1-5"` */
  cron?: string;
  /** `--every 1M7d`: the compact duration form (see parseCompactDuration). */
  every?: string;
  /** `--tz Europe/Paris` */
  timezone?: string;
  /** `--jitter 5m`: spread each run over [date, date + 5 min) (compact, ISO 8601 or milliseconds). */
  jitter?: string;
  /** `--delay 30s`: run this long after each cron fire time (with `--cron` only). */
  delay?: string;
}

export type RepeatSpecBuild =
  | { ok: true; repeat: Record<string, unknown> | undefined }
  | { ok: false; message: string };

/**
 * The `repeat` object a task document stores for `--cron`/`--every`/`--tz`/`--jitter`/`--delay`,
 * checked with the worker's own parseRepeat: `{"cron": "...", "timezone": "...", "delay": "30s"}`
 * or `{"months": 1, "days": 7, "timezone": "...", "jitter": "5m"}`. `repeat` is undefined when
 * no flag is given. Messages name the flag. Never throws.
 */
export function repeatSpecFromFlags(flags: RepeatFlags): RepeatSpecBuild {
  const { cron, every, timezone, jitter, delay } = flags;
  if (cron !== undefined && every !== undefined) return { ok: false, message: '--cron and --every: give one schedule, not both' };
  if (cron === undefined && every === undefined) {
    const alone = timezone !== undefined ? '--tz' : jitter !== undefined ? '--jitter' : delay !== undefined ? '--delay' : undefined;
    return alone === undefined ? { ok: true, repeat: undefined } : { ok: false, message: `${alone}: needs --cron or --every` };
  }
  if (delay !== undefined && cron === undefined) return { ok: false, message: '--delay: only a cron schedule takes a delay (--cron)' };
  for (const [flag, text] of [['--jitter', jitter], ['--delay', delay]] as const) {
    if (text === undefined) continue;
    const parsed = parseFixedDurationMs(text, flag);
    if (!parsed.ok) return parsed;
  }
  if (timezone !== undefined) {
    const zone = parseTimeZone(timezone, '--tz');
    if (!zone.ok) return zone;
  }
  let repeat: Record<string, unknown>;
  if (cron !== undefined) {
    const checked = checkCronPattern(cron, timezone ?? 'UTC', '--cron');
    if (!checked.ok) return checked;
    repeat = { cron };
  } else {
    const duration = parseCompactDuration(every!, '--every');
    if (!duration.ok) return duration;
    repeat = durationToObject(duration.duration);
  }
  if (timezone !== undefined) repeat.timezone = timezone;
  if (delay !== undefined) repeat.delay = delay;
  if (jitter !== undefined) repeat.jitter = jitter;
  const parsed = parseRepeat(repeat);
  return parsed.ok ? { ok: true, repeat } : parsed;
}

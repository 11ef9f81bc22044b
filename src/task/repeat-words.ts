/**
 * A repeat in words, as the dashboard's schedules list shows it: "weekdays at 09:00
 * Europe/Paris, jitter 5 min", "every 15 minutes", "every 1 month 7 days". The common cron
 * shapes are read as a person says them; any other pattern is shown as it is written. Pure.
 */
import { durationToObject } from './duration';
import type { Repeat } from './repeat';

const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

export function repeatInWords(repeat: Repeat): string {
  const parts = [repeat.kind === 'cron' ? cronInWords(repeat.pattern, repeat.timezone) : intervalInWords(repeat)];
  if (repeat.kind === 'cron' && repeat.delayMs) parts.push(`delay ${msInWords(repeat.delayMs)}`);
  if (repeat.jitterMs) parts.push(`jitter ${msInWords(repeat.jitterMs)}`);
  if (repeat.limit !== undefined) parts.push(`${repeat.limit} time${repeat.limit === 1 ? '' : 's'} at most`);
  if (repeat.untilMs !== undefined) parts.push(`until ${new Date(repeat.untilMs).toISOString().replace('.000Z', 'Z')}`);
  return parts.join(', ');
}

function intervalInWords(repeat: Extract<Repeat, { kind: 'interval' }>): string {
  const units = Object.entries(durationToObject(repeat.every)).map(([unit, n]) => (n === 1 ? unit.slice(0, -1) : `${n} ${unit}`));
  const calendar = repeat.every.years + repeat.every.months + repeat.every.weeks + repeat.every.days > 0;
  return `every ${units.join(' ')}${calendar && repeat.timezone ? ` (${repeat.timezone} calendar)` : ''}`;
}

/** The usual shapes of a 5-field pattern; anything else is quoted. */
export function cronInWords(pattern: string, timezone: string): string {
  const zone = timezone === 'UTC' ? 'UTC' : timezone;
  const fields = pattern.trim().split(/\s+/);
  if (fields.length !== 5) return `cron "${pattern}" (${zone})`;
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [string, string, string, string, string];
  const everyMinutes = /^\*\/(\d+)$/.exec(minute);
  if (everyMinutes && hour === '*' && dayOfMonth === '*' && month === '*' && dayOfWeek === '*') return `every ${everyMinutes[1]} minutes`;
  if (minute === '*' && hour === '*' && dayOfMonth === '*' && month === '*' && dayOfWeek === '*') return 'every minute';
  if (/^\d+$/.test(minute) && hour === '*' && dayOfMonth === '*' && month === '*' && dayOfWeek === '*') return `every hour at :${minute.padStart(2, '0')}`;
  const everyHours = /^\*\/(\d+)$/.exec(hour);
  if (/^\d+$/.test(minute) && everyHours && dayOfMonth === '*' && month === '*' && dayOfWeek === '*') return `every ${everyHours[1]} hours at :${minute.padStart(2, '0')}`;
  if (!/^\d+$/.test(minute) || !/^\d+(,\d+)*$/.test(hour)) return `cron "${pattern}" (${zone})`;
  const at = `at ${hour.split(',').map((h) => `${h.padStart(2, '0')}:${minute.padStart(2, '0')}`).join(' and ')} ${zone}`;
  const days = daysInWords(dayOfWeek);
  if (dayOfMonth === '*' && month === '*' && days !== undefined) return `${days} ${at}`;
  if (/^\d+$/.test(dayOfMonth) && dayOfWeek === '*') {
    if (month === '*') return `on day ${dayOfMonth} of every month ${at}`;
    if (/^\d+$/.test(month) && Number(month) >= 1 && Number(month) <= 12) return `every ${MONTH_NAMES[Number(month) - 1]} ${dayOfMonth} ${at}`;
  }
  return `cron "${pattern}" (${zone})`;
}

function daysInWords(field: string): string | undefined {
  if (field === '*') return 'every day';
  if (field === '1-5' || field === 'MON-FRI' || field === 'mon-fri') return 'weekdays';
  if (field === '0,6' || field === '6,0' || field === 'SAT,SUN' || field === '6-7') return 'weekends';
  if (!/^[0-7](,[0-7])*$/.test(field)) return undefined;
  return `every ${field.split(',').map((d) => DAY_NAMES[Number(d) % 7]).join(' and ')}`;
}

/** `5 min`, `1 h 30 min`, `30 s`, `250 ms`. */
export function msInWords(ms: number): string {
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

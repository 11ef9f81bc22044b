/**
 * A length of time for a person to read: the two largest units, as `ps` and pm2 show uptime.
 * The one style of every such text After prints or logs (`after list`, `after status`, a
 * worker's "overdue by" line).
 */

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** `3d 4h`, `2h 5m`, `7m 12s`, `42s`, `0s` under a second; `-` for a negative or non-finite value. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  let left = Math.floor(ms / 1000);
  const counts = UNITS.map(([unit, seconds]) => {
    const count = Math.floor(left / seconds);
    left -= count * seconds;
    return [unit, count] as const;
  });
  const first = counts.findIndex(([, count]) => count > 0);
  if (first === -1) return '0s';
  return counts
    .slice(first, first + 2)
    .filter(([, count], index) => index === 0 || count > 0)
    .map(([unit, count]) => `${count}${unit}`)
    .join(' ');
}

/**
 * Printing helpers for the CLI: tables, human durations and the one-line error form.
 * Everything a command prints goes through `Output`, so every line is scrubbed of
 * credentials (a URL with `user:password@` never reaches a terminal or a CI log) and of
 * control characters (src/text.ts): text from a task document never reaches the terminal as
 * an ESC sequence. Commands escape newlines in document text where they interpolate it
 * (`printable`); table cells are escaped here.
 */
import { scrubSecrets } from '../log';
import { printable, printableLines } from '../text';

export interface Output {
  /** One line (or several joined lines) to stdout. */
  line(text?: string): void;
  /** One line to stderr (warnings a script should not parse). */
  warn(text: string): void;
}

export const consoleOutput: Output = {
  line: (text = '') => process.stdout.write(`${printableLines(scrubSecrets(text))}\n`),
  warn: (text) => process.stderr.write(`${printableLines(scrubSecrets(text))}\n`),
};

/**
 * Left-aligned columns separated by two spaces; an empty table is just the header. Cells are
 * made printable: a newline or ESC in a task's id or worker cannot break or repaint the table.
 */
export function formatTable(rawHeaders: readonly string[], rawRows: readonly (readonly string[])[]): string[] {
  const rows = rawRows.map((row) => row.map(printable));
  const headers = rawHeaders.map(printable);
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const render = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...rows.map(render)];
}

/** `3d 4h`, `2h 5m`, `7m 12s`, `42s`: the two largest units, like `ps`/pm2 show uptime. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  const totalSeconds = Math.floor(ms / 1000);
  const units: [string, number][] = [
    ['d', Math.floor(totalSeconds / 86_400)],
    ['h', Math.floor(totalSeconds / 3600) % 24],
    ['m', Math.floor(totalSeconds / 60) % 60],
    ['s', totalSeconds % 60],
  ];
  const first = units.findIndex(([, value]) => value > 0);
  if (first === -1) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([, value], index) => index === 0 || value > 0)
    .map(([unit, value]) => `${value}${unit}`)
    .join(' ');
}

/**
 * The one line printed for a failed command: `after: <message>`, credentials scrubbed,
 * newlines folded (a message from a server may carry several lines). With `verbose`, the
 * stack follows on the next lines.
 */
export function errorLines(thrown: unknown, verbose: boolean): string[] {
  const err = thrown instanceof Error ? thrown : new Error(String(thrown));
  const message = (err.message || err.name || 'failed').replace(/\s*\n\s*/g, ' ').trim();
  const lines = [printable(scrubSecrets(`after: ${message}`))];
  if (verbose && err.stack) lines.push(printableLines(scrubSecrets(err.stack)));
  return lines;
}

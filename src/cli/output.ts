/**
 * Printing helpers for the CLI: tables and the one-line error form (durations: format-duration.ts).
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

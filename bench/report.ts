/** The one table `make bench` prints: a row per figure, next to the raw database's figure. */

export interface Row {
  workload: string;
  figure: string;
  /** The measured value, already formatted with its unit. */
  value: string;
  /** The raw database's figure for the same work in the same run, formatted; '' when none. */
  raw?: string;
  /** value ÷ raw, when both are numbers of the same kind. */
  ratio?: number;
  target?: string;
  /** undefined: no target for this figure. */
  met?: boolean;
}

export function ms(value: number): string {
  return Number.isFinite(value) ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ms` : '-';
}

export function seconds(valueMs: number): string {
  return Number.isFinite(valueMs) ? `${(valueMs / 1000).toFixed(2)} s` : '-';
}

export function ratioOf(value: number, raw: number): number | undefined {
  return Number.isFinite(value) && Number.isFinite(raw) && raw > 0 ? value / raw : undefined;
}

const HEADERS = ['workload', 'figure', 'value', 'raw', 'ratio', 'target', 'met?'];

/** Rows as a Markdown table (readable in a terminal, pasteable into docs/performance.md). */
export function formatTable(rows: readonly Row[]): string[] {
  const cells = rows.map((row) => [
    row.workload,
    row.figure,
    row.value,
    row.raw ?? '',
    row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
    row.target ?? '',
    row.met === undefined ? '' : row.met ? 'yes' : 'NO',
  ]);
  const widths = HEADERS.map((header, column) => Math.max(header.length, ...cells.map((line) => line[column]!.length)));
  const format = (line: string[]): string => `| ${line.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [format(HEADERS), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(format)];
}

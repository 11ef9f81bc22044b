/** A row of numbers as block characters, scaled to the row's maximum: `▁▁▂▅█▇▃▁`. Pure. */
const BLOCKS = '▁▂▃▄▅▆▇█';

export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values.map((value) => (max === 0 || value <= 0 ? ' ' : BLOCKS[Math.min(BLOCKS.length - 1, Math.floor((value / max) * (BLOCKS.length - 1) + 0.5))])).join('');
}

/** `values` summed in groups of `size` (60 ten-second slots → 30 twenty-second columns). */
export function grouped(values: readonly number[], size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size).reduce((a, b) => a + b, 0));
  return out;
}

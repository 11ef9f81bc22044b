/** Measures over the runs a test observed: how many at once, how many starts in a window. */

/** The most runs that overlapped at any moment; a run ending at t does not overlap one starting at t. */
export function maxOverlap(runs: ReadonlyArray<{ start: number; end: number }>): number {
  const edges = runs.flatMap((r) => [
    { at: r.start, delta: 1 },
    { at: r.end, delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const edge of edges) {
    now += edge.delta;
    most = Math.max(most, now);
  }
  return most;
}

/** Most starts in any window of `periodMs` (closed at both ends: the strictest count). */
export function mostInAnyWindow(starts: readonly number[], periodMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! > periodMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * Run figures: how many runs ended done, failed and retried, and how late they started, as a
 * fixed-length vector of numbers so that CouchDB's and PouchDB's built-in `_sum` reduce adds
 * them up element by element (over instances, over minutes, hours and days) without a line of
 * JavaScript in the database. Start lateness is a histogram over fixed bounds, so p50 and p99
 * of any sum of vectors are read from the summed histogram (within a bucket's width).
 *
 * Pure: the recorder (metrics/run-stats-recorder.ts), the readers (store/run-stats.ts), the
 * dashboard and `after status` all use these functions.
 */

/** Upper bounds (ms) of the lateness buckets; one last bucket holds everything later. */
export const LATENESS_BOUNDS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000];

/** Vector layout: [done, failed, retried, ...lateness bucket counts]. */
const DONE = 0;
const FAILED = 1;
const RETRIED = 2;
const FIRST_BUCKET = 3;
export const VECTOR_LENGTH = FIRST_BUCKET + LATENESS_BOUNDS_MS.length + 1;

/** How a finished run counts on the charts. */
export type RunEnd = 'done' | 'failed' | 'retried';

export interface RunFigures {
  done: number;
  failed: number;
  retried: number;
  /** Runs started (with a known lateness). */
  started: number;
  /** Start lateness percentiles in ms (null when nothing started). */
  lateP50: number | null;
  lateP99: number | null;
}

export function emptyVector(): number[] {
  return new Array<number>(VECTOR_LENGTH).fill(0);
}

/** `into` += `other`, element by element; a shorter or malformed `other` adds what it has. */
export function addVector(into: number[], other: readonly unknown[] | undefined): number[] {
  if (!Array.isArray(other)) return into;
  for (let i = 0; i < VECTOR_LENGTH && i < other.length; i++) {
    const value = other[i];
    if (typeof value === 'number' && Number.isFinite(value)) into[i] = (into[i] ?? 0) + value;
  }
  return into;
}

export function countRunEnd(vector: number[], end: RunEnd): void {
  vector[end === 'done' ? DONE : end === 'failed' ? FAILED : RETRIED]! += 1;
}

export function countStart(vector: number[], lateMs: number): void {
  vector[FIRST_BUCKET + bucketOf(lateMs)]! += 1;
}

function bucketOf(lateMs: number): number {
  const late = Math.max(0, lateMs);
  const index = LATENESS_BOUNDS_MS.findIndex((bound) => late <= bound);
  return index === -1 ? LATENESS_BOUNDS_MS.length : index;
}

/** A vector as the charts and `after status` show it. */
export function figuresOf(vector: readonly number[]): RunFigures {
  const buckets = vector.slice(FIRST_BUCKET, VECTOR_LENGTH);
  const started = buckets.reduce((sum, n) => sum + n, 0);
  return {
    done: vector[DONE] ?? 0,
    failed: vector[FAILED] ?? 0,
    retried: vector[RETRIED] ?? 0,
    started,
    lateP50: quantile(buckets, started, 0.5),
    lateP99: quantile(buckets, started, 0.99),
  };
}

/**
 * The q-quantile of a histogram, interpolated linearly inside its bucket (from the bucket's
 * lower bound to its upper one; the open last bucket answers its lower bound).
 */
export function quantile(buckets: readonly number[], total: number, q: number): number | null {
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i] ?? 0;
    if (count > 0 && below + count >= rank) {
      const lower = i === 0 ? 0 : LATENESS_BOUNDS_MS[i - 1]!;
      const upper = LATENESS_BOUNDS_MS[i];
      if (upper === undefined) return lower;
      return Math.round(lower + ((rank - below) / count) * (upper - lower));
    }
    below += count;
  }
  return LATENESS_BOUNDS_MS[LATENESS_BOUNDS_MS.length - 1]!;
}

/**
 * How a `task:finished` event counts: a success (or a job's `later`) is done; a failure with no
 * retry left is failed; a failure that runs again (a retry policy, the job's `retry`) is
 * retried. A cancel or a hand-back (`release`) is no run end on the charts.
 */
export function runEndOf(finished: { status: string; outcome?: string; error?: string }): RunEnd | undefined {
  switch (finished.outcome) {
    case 'success':
    case 'later':
      return 'done';
    case 'retry':
      return 'retried';
    case 'failure':
      return finished.status === 'error' ? 'failed' : 'retried';
    case 'canceled':
    case 'release':
      return undefined;
  }
  if (finished.status === 'canceled') return undefined;
  if (finished.status === 'error') return 'failed';
  if (finished.error !== undefined) return 'retried';
  return 'done';
}

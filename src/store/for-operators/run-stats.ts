/**
 * Reading the run figures (run-stats-db.ts) as charts and tables want them: a series of points
 * over the last 10 minutes (10-second steps, from the instances' documents of the last two
 * hours), the last 7 days (hourly) or the last 90 days (daily, both from the `by_hour` view's
 * `_sum`), for one worker name or every one, and each instance's figures of the last 10 minutes.
 */
import { addVector, emptyVector, figuresOf, type RunFigures } from '../../stats/run-figures';
import { BY_HOUR_VIEW, hourKey, hourStartMs, RUNS_PREFIX, SLOT_MS, statsDbName, type RunsDoc } from '../run-stats-db';
import { readView, type ReadSide } from './read-views';

export type ChartRange = 'realtime' | 'hours' | 'days';
export const CHART_RANGES: readonly ChartRange[] = ['realtime', 'hours', 'days'];

export interface RunPoint extends RunFigures {
  /** Start of the step, epoch ms (UTC). */
  t: number;
}

export interface RunSeries {
  range: ChartRange;
  /** null: every worker name. */
  worker: string | null;
  stepMs: number;
  points: RunPoint[];
  /** The whole range at once. */
  total: RunFigures;
}

const REALTIME_MS = 10 * 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const STEPS: Record<ChartRange, { stepMs: number; count: number }> = {
  realtime: { stepMs: SLOT_MS, count: REALTIME_MS / SLOT_MS },
  hours: { stepMs: HOUR_MS, count: 7 * 24 },
  days: { stepMs: DAY_MS, count: 90 },
};

export async function readRunSeries(read: ReadSide, options: { range: ChartRange; worker?: string; nowMs?: number }): Promise<RunSeries> {
  const nowMs = options.nowMs ?? read.conn.clock.dbNow();
  const { stepMs, count } = STEPS[options.range];
  const firstMs = Math.floor(nowMs / stepMs) * stepMs - (count - 1) * stepMs;
  const vectors = Array.from({ length: count }, () => emptyVector());
  const add = (tMs: number, vector: readonly unknown[]): void => {
    const index = Math.floor((tMs - firstMs) / stepMs);
    if (index >= 0 && index < count) addVector(vectors[index]!, vector);
  };
  if (options.range === 'realtime') {
    for (const doc of await readRecentDocs(read, firstMs, nowMs)) {
      if (options.worker !== undefined && doc.worker !== options.worker) continue;
      const start = hourStartMs(doc.hour);
      for (const [slot, vector] of Object.entries(doc.slots ?? {})) add(start + Number(slot) * SLOT_MS, vector);
    }
  } else {
    const worker = options.worker ?? '';
    const groupLevel = options.range === 'hours' ? 3 : 2;
    const res = await readView(read, BY_HOUR_VIEW, { group_level: groupLevel, startkey: [worker, dayOf(firstMs)], endkey: [worker, dayOf(nowMs), {}] }, statsDbName(read.conn.dbName));
    for (const row of res.rows) {
      const [, day, hour] = row.key as [string, string, string?];
      add(Date.parse(`${day}T${hour ?? '00'}:00:00.000Z`), row.value as unknown[]);
    }
  }
  const total = emptyVector();
  for (const vector of vectors) addVector(total, vector);
  return {
    range: options.range,
    worker: options.worker ?? null,
    stepMs,
    points: vectors.map((vector, i) => ({ t: firstMs + i * stepMs, ...figuresOf(vector) })),
    total: figuresOf(total),
  };
}

/** Each instance's figures over the last 10 minutes, by instance id. */
export async function readInstanceFigures(read: ReadSide, nowMs = read.conn.clock.dbNow()): Promise<Map<string, RunFigures & { worker: string }>> {
  const sinceMs = nowMs - REALTIME_MS;
  const byInstance = new Map<string, { worker: string; vector: number[] }>();
  for (const doc of await readRecentDocs(read, sinceMs, nowMs)) {
    const entry = byInstance.get(doc.instance) ?? { worker: doc.worker, vector: emptyVector() };
    byInstance.set(doc.instance, entry);
    const start = hourStartMs(doc.hour);
    for (const [slot, vector] of Object.entries(doc.slots ?? {})) if (start + Number(slot) * SLOT_MS >= sinceMs) addVector(entry.vector, vector);
  }
  return new Map([...byInstance].map(([instance, entry]) => [instance, { worker: entry.worker, ...figuresOf(entry.vector) }]));
}

/** The documents of the hours from `fromMs` to `toMs` (the newest minute may not be written yet). */
async function readRecentDocs(read: ReadSide, fromMs: number, toMs: number): Promise<RunsDoc[]> {
  const res = await read.conn.request<{ rows: Array<{ doc?: RunsDoc }> }>({
    db: statsDbName(read.conn.dbName),
    path: '_all_docs',
    qs: { startkey: `${RUNS_PREFIX}${hourKey(fromMs)}:`, endkey: `${RUNS_PREFIX}${hourKey(toMs)}:\ufff0`, include_docs: true } as unknown as Record<string, string>,
  });
  return res.body.rows.flatMap((row) => (row.doc && row.doc.type === 'runs' && typeof row.doc.hour === 'string' ? [row.doc] : []));
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

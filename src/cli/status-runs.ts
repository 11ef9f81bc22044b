/**
 * The run figures in `after status`: per worker name and in total, the runs of the last 10
 * minutes as a sparkline (20-second columns), done, failed and retried, start lateness p50/p99,
 * and the runs of the last 24 hours; then what each live instance runs now and since when.
 */
import { formatDuration } from '../format-duration';
import type { InstanceView } from '../store/for-operators/instances';
import type { ReadSide } from '../store/for-operators/read-views';
import { readRunSeries } from '../store/for-operators/run-stats';
import { grouped, sparkline } from '../stats/sparkline';
import { formatTable } from './output';

export async function runFiguresLines(read: ReadSide, workers: readonly string[]): Promise<string[]> {
  const names = [...workers].sort();
  const rows = await Promise.all(
    [...names, undefined].map(async (worker) => {
      const [recent, day] = await Promise.all([
        readRunSeries(read, { range: 'realtime', ...(worker === undefined ? {} : { worker }) }),
        readRunSeries(read, { range: 'hours', ...(worker === undefined ? {} : { worker }) }),
      ]);
      const last24 = day.points.slice(-24);
      const t = recent.total;
      return [
        worker ?? '(all)',
        sparkline(grouped(recent.points.map((p) => p.done + p.failed + p.retried), 2)),
        String(t.done),
        String(t.failed),
        String(t.retried),
        t.lateP50 === null ? '-' : `${t.lateP50} / ${t.lateP99} ms`,
        String(last24.reduce((n, p) => n + p.done + p.failed + p.retried, 0)),
      ];
    }),
  );
  return ['runs, last 10 minutes (recorded by each instance once a minute):', ...formatTable(['WORKER', 'RUNS PER 20 S', 'DONE', 'FAILED', 'RETRIED', 'LATE P50 / P99', 'RUNS 24 H'], rows)];
}

/** What each live instance runs now, longest first; nothing when none runs. */
export function runsNowLines(instances: readonly InstanceView[], nowMs: number): string[] {
  const rows = instances
    .filter((i) => i.live)
    .flatMap((i) => (i.running_now ?? []).map((run) => [i.worker, i.instance, run.id, run.job, `${formatDuration(Math.max(0, nowMs - Date.parse(run.since)))}`]));
  return rows.length === 0 ? [] : ['runs now:', ...formatTable(['WORKER', 'INSTANCE', 'TASK', 'JOB', 'SINCE'], rows)];
}

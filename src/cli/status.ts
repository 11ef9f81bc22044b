/** `after status`: where the tasks are, how many of each worker are in each status, the live instances and the run figures. */
import type { Command } from 'commander';
import { readWorkers, type InstanceView } from '../store/for-operators/instances';
import { readStatusCountsWithLag, type StatusCount } from '../store/for-operators/task-counts';
import { detectServer, openConnection } from '../store/connection';
import { STATUSES } from '../types';
import type { CliContext } from './context';
import { formatDuration } from '../format-duration';
import { formatTable } from './output';
import { runFiguresLines, runsNowLines } from './status-runs';

export function registerStatusCommand(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('task counts by worker and status, live worker instances, and the database in use')
    .action(async () => {
      const conn = openConnection(ctx.config());
      const server = await detectServer(conn);
      ctx.out.line(`database ${conn.displayUrl}/${conn.dbName} (${server.kind} ${server.version}${server.clustered ? ', clustered' : ''})`);
      const read = { conn, kind: server.kind };
      const [{ counts, lag }, workers] = await Promise.all([readStatusCountsWithLag(read), readWorkers(conn)]);
      if (counts.length === 0) ctx.out.line('no tasks');
      else for (const line of countsTable(counts)) ctx.out.line(line);
      if (lag > 0) ctx.out.line(`(the counts' index is ${lag} changes behind the database; it catches up in the background)`);
      ctx.out.line();
      for (const line of instancesLines(workers.instances)) ctx.out.line(line);
      for (const line of runsNowLines(workers.instances, conn.clock.dbNow())) ctx.out.line(line);
      if (workers.paused.length > 0) ctx.out.line(`paused workers: ${workers.paused.join(', ')}`);
      const names = new Set([...counts.map((c) => c.worker), ...workers.instances.filter((i) => i.live).map((i) => i.worker)]);
      const figures = await runFiguresLines(read, [...names]).catch((err: Error) => [`run figures: ${err.message}`]);
      ctx.out.line();
      for (const line of figures) ctx.out.line(line);
    });
}

/**
 * Live instances (heartbeat recent by the database's clock), one row each; then the suspect ones
 * (heartbeat dated ahead of the database's clock), which no worker counts.
 */
export function instancesLines(instances: readonly InstanceView[]): string[] {
  return [...liveLines(instances), ...suspectLines(instances)];
}

function liveLines(instances: readonly InstanceView[]): string[] {
  const live = instances.filter((instance) => instance.live);
  if (live.length === 0) return ['no live worker instances'];
  // Instances of a worker name with `limits` report their throttled tasks: a column then.
  const limited = live.some((i) => typeof i.throttled === 'number');
  const rows = live.map((i) => [
    i.worker, i.instance, i.host, String(i.pid), `${formatDuration(i.age_ms)} ago`, String(i.running), String(i.held),
    ...(limited ? [typeof i.throttled === 'number' ? String(i.throttled) : '-'] : []),
  ]);
  const headers = ['WORKER', 'INSTANCE', 'HOST', 'PID', 'HEARTBEAT', 'RUNNING', 'HELD', ...(limited ? ['THROTTLED'] : [])];
  return [`live instances: ${live.length}`, ...formatTable(headers, rows)];
}

function suspectLines(instances: readonly InstanceView[]): string[] {
  const suspect = instances.filter((instance) => instance.suspect);
  if (suspect.length === 0) return [];
  const rows = suspect.map((i) => [i.worker, i.instance, i.host, String(i.pid), i.heartbeat_at]);
  return [
    `suspect instances: ${suspect.length} (heartbeat dated ahead of the database's clock: a clock far off, or a document written by someone else; workers ignore them)`,
    ...formatTable(['WORKER', 'INSTANCE', 'HOST', 'PID', 'HEARTBEAT DATED'], rows),
  ];
}

/**
 * One row per worker, one column per status that occurs (in lifecycle order, unknown
 * statuses after), and a total column: the view a user scans for stuck or failed tasks.
 */
export function countsTable(counts: readonly StatusCount[]): string[] {
  const known = STATUSES.filter((status) => counts.some((c) => c.status === status));
  const unknown = [...new Set(counts.map((c) => c.status).filter((s) => !(STATUSES as readonly string[]).includes(s)))].sort();
  const columns = [...known, ...unknown];
  const workers = [...new Set(counts.map((c) => c.worker))].sort();
  const rows = workers.map((worker) => {
    const cells = columns.map((status) =>
      counts.filter((c) => c.worker === worker && c.status === status).reduce((sum, c) => sum + c.count, 0),
    );
    const total = cells.reduce((sum, n) => sum + n, 0);
    return [worker, ...cells.map(String), String(total)];
  });
  return formatTable(['WORKER', ...columns.map((s) => s.toUpperCase()), 'TOTAL'], rows);
}

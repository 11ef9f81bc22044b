/**
 * `after pause|resume <worker>` and `after reload <name>`: steering workers while they run.
 * A pause is a document in the control database (store/worker-pause.ts), honoured by every
 * instance of the worker on every machine; a reload is a signal to a background worker's
 * process (SIGHUP, or SIGUSR2 with --logs), through pm2.
 */
import type { Command } from 'commander';
import { readWorkers } from '../store/for-operators/instances';
import { openConnection } from '../store/connection';
import { pauseWorker, resumeWorker, type PauseReport } from '../store/for-operators/worker-pause';
import { printable } from '../text';
import type { CliContext } from './context';
import { pm2Home, signalBackground } from './pm2';
import { checkWorkerName } from './worker-name';

export function registerSteerCommands(program: Command, ctx: CliContext): void {
  program
    .command('pause <worker>')
    .description('pause a worker name: no new run starts on any of its instances until `after resume` (runs in progress finish)')
    .action(async (worker: string) => {
      const conn = openConnection(ctx.config());
      const report = await pauseWorker(conn, worker, { by: 'after pause' });
      const live = await liveInstances(conn, worker);
      for (const line of pauseLines(report, live)) ctx.out.line(line);
    });

  program
    .command('resume <worker>')
    .description('resume a paused worker name: what came due meanwhile runs now (a repeat that missed several dates, once)')
    .action(async (worker: string) => {
      const conn = openConnection(ctx.config());
      const report = await resumeWorker(conn, worker);
      const live = await liveInstances(conn, worker);
      for (const line of resumeLines(report, live)) ctx.out.line(line);
    });

  program
    .command('reload <name>')
    .description('make a background worker reload its configuration and jobs folder (SIGHUP); --logs: reopen its log files (SIGUSR2)')
    .option('--logs', 'only open its log files again (after logrotate moved them), with SIGUSR2')
    .action(async (name: string, opts: { logs?: boolean }) => {
      checkWorkerName(name);
      const signal = opts.logs ? 'SIGUSR2' : 'SIGHUP';
      const worker = await signalBackground(pm2Home(ctx.config().home), name, signal);
      const pid = worker.pid === null ? '' : ` (pid ${worker.pid})`;
      ctx.out.line(
        opts.logs
          ? `worker ${name}${pid} asked to open its log files again (SIGUSR2), and pm2 its own`
          : `worker ${name}${pid} asked to reload its configuration and jobs (SIGHUP); 'after log ${name}' shows the outcome`,
      );
    });
}

async function liveInstances(conn: ReturnType<typeof openConnection>, worker: string): Promise<number> {
  const { instances } = await readWorkers(conn);
  return instances.filter((instance) => instance.live && instance.worker === worker).length;
}

function instancesPhrase(live: number): string {
  return live === 0 ? 'no live instance runs it now' : live === 1 ? '1 live instance' : `${live} live instances`;
}

/** What `after pause` prints. */
export function pauseLines(report: PauseReport, live: number): string[] {
  const name = printable(report.worker);
  if (!report.changed) return [`worker ${name} was already paused${report.pausedAt ? ` (since ${report.pausedAt})` : ''}`];
  if (!report.hasTasks) return [`worker ${name} paused, but no task names worker ${name}: tasks created for it will wait until 'after resume ${name}'`];
  return [`worker ${name} paused: no new run starts (${instancesPhrase(live)}; runs in progress finish); 'after resume ${name}' resumes it`];
}

/** What `after resume` prints. */
export function resumeLines(report: PauseReport, live: number): string[] {
  const name = printable(report.worker);
  if (!report.changed) return [`worker ${name} was not paused`];
  if (!report.hasTasks) return [`worker ${name} resumed (no task names it)`];
  return [`worker ${name} resumed (${instancesPhrase(live)}): what came due meanwhile runs now, a repeat that missed several dates once`];
}

/**
 * `after start|stop|list|log|clean`: workers in the foreground (worker-foreground.ts), or in
 * the background as pm2 processes (worker-background.ts; all pm2 calls are in pm2.ts).
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { AfterConfig } from '../config/types';
import { AfterError } from '../errors';
import { formatDuration } from '../format-duration';
import { workerLogFile } from '../log';
import type { CliContext } from './context';
import { followFile, readLastLines } from './log-file';
import { absolutePath, collectHostNames, integerIn } from './options';
import { formatTable } from './output';
import { flushLogs, listWorkers, pm2Home, stopBackground } from './pm2';
import { credentialSocketPath } from './credential-socket';
import { secretsFile, waitingMarker } from './secrets-file';
import type { StartOptions } from './start-options';
import { onStopSignal } from './signals';
import { startInBackground } from './worker-background';
import { checkWorkerName } from './worker-name';

export function registerWorkerCommands(program: Command, ctx: CliContext): void {
  program
    .command('start <name>')
    .description('start a worker: run the tasks whose "worker" is <name> (Ctrl-C stops it; -b: in the background)')
    .option('-b, --background', 'run under pm2 (restarted if it crashes); see `after list`, `after log`, `after stop`')
    .option('--jobs <dir>', 'jobs folder (default: jobs in config, or AFTER_JOBS)', absolutePath)
    .option('--concurrency <n>', 'runs at once (default: worker.concurrency in config)', integerIn(1, 10_000))
    .option('--lease <ms>', 'how long a claim holds before another instance may take a run over', integerIn(1000, 86_400_000))
    .option('--metrics-port <n>', 'serve Prometheus metrics at http://127.0.0.1:<n>/metrics (0: any free port)', integerIn(0, 65535))
    .option('--metrics-host <host>', 'address the metrics endpoint binds (default 127.0.0.1)')
    .option(
      '--metrics-allowed-host <name>',
      'also answer metrics scrapes under this name or address (name[:port]; repeatable), e.g. the address Prometheus scrapes with --metrics-host 0.0.0.0',
      collectHostNames,
    )
    .action(async (name: string, opts: StartOptions) => {
      checkWorkerName(name);
      if (opts.background) return startInBackground(ctx, name, opts);
      // Loaded here, not at the top: only this command needs the worker (and all it imports),
      // and every other command starts faster without it.
      const { runInForeground } = require('./worker-foreground') as typeof import('./worker-foreground');
      return runInForeground(ctx, name, opts);
    });

  program
    .command('stop <name>')
    .description('stop a background worker (it finishes its runs first) and remove it from pm2')
    .action(async (name: string) => {
      checkWorkerName(name);
      const config = ctx.config();
      const report = await stopBackground(pm2Home(config.home), name);
      // What a keeper killed while it waited may have left: its socket; and an older After's files.
      fs.rmSync(credentialSocketPath(config.home, name), { force: true });
      fs.rmSync(secretsFile(config.home, name), { force: true });
      fs.rmSync(waitingMarker(secretsFile(config.home, name)), { force: true });
      ctx.out.line(`worker ${name} stopped`);
      if (report.daemonStopped) ctx.out.line('no background workers left; pm2 daemon stopped');
    });

  program
    .command('list')
    .description('list background workers with state, pid, uptime and restarts')
    .action(async () => {
      const workers = await listWorkers(pm2Home(ctx.config().home));
      if (workers.length === 0) {
        ctx.out.line('no workers');
        return;
      }
      const rows = workers.map((w) => [
        w.worker,
        w.state,
        w.pid === null ? '-' : String(w.pid),
        w.uptimeMs === null ? '-' : formatDuration(w.uptimeMs),
        String(w.restarts),
      ]);
      for (const line of formatTable(['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS'], rows)) ctx.out.line(line);
    });

  program
    .command('log <name>')
    .description("show the end of a worker's log (-f: keep following it)")
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many lines from the end', integerIn(0, 1_000_000), 50)
    .action(async (name: string, opts: { follow?: boolean; lines: number }) => {
      const file = existingLogFile(ctx.config(), checkWorkerName(name));
      const { lines, size } = readLastLines(file, opts.lines);
      for (const line of lines) ctx.out.line(line);
      if (!opts.follow) return;
      const stop = onStopSignal();
      const follower = followFile(file, size, (line) => ctx.out.line(line));
      await stop.requested;
      follower.stop();
      stop.dispose();
    });

  program
    .command('clean <name>')
    .description("empty a worker's log (and pm2's output files of it)")
    .action(async (name: string) => {
      const config = ctx.config();
      const file = existingLogFile(config, checkWorkerName(name));
      // Truncate in place: a running worker keeps its file open in append mode, so its next
      // line lands at the new end rather than in an unlinked file.
      fs.truncateSync(file, 0);
      const flushed = await flushLogs(pm2Home(config.home), name);
      ctx.out.line(`cleared ${file}${flushed ? ' and the pm2 output of after-' + name : ''}`);
    });
}

function existingLogFile(config: AfterConfig, name: string): string {
  const file = workerLogFile(config.log.dir, name);
  if (!fs.existsSync(file)) throw new AfterError('E_NO_LOG', `no log for worker ${name} (${file})`);
  return file;
}

/** `after ui`: the web dashboard over the configured database, until Ctrl-C. */
import type { Command } from 'commander';
import { createLogger } from '../log';
import { detectServer, openConnection } from '../store/connection';
import { startDashboard } from '../ui/server';
import type { CliContext } from './context';
import { integerIn } from './options';
import { onStopSignal } from './signals';

/** Not 5984 (CouchDB's) nor 8080 (everybody's). */
export const DEFAULT_UI_PORT = 5990;

export function registerUiCommand(program: Command, ctx: CliContext): void {
  program
    .command('ui')
    .description('serve the web dashboard: live instances, counts, due tasks, failures, and actions on tasks')
    .option('--port <n>', 'port to listen on (0: any free port)', integerIn(0, 65535), DEFAULT_UI_PORT)
    .option('--host <host>', 'address to bind; anyone who reaches it can act on tasks with your database credentials', '127.0.0.1')
    .action(async (opts: { port: number; host: string }) => {
      const config = ctx.config();
      const log = createLogger({ level: config.log.level });
      const conn = openConnection(config, { log });
      // Fail now, in one line, when the database is away, rather than serve a page of errors.
      const server = await detectServer(conn);
      const stop = onStopSignal();
      const dashboard = await startDashboard({ conn, port: opts.port, host: opts.host, heartbeatMs: config.worker.heartbeat_ms, log }).catch((err) => {
        stop.dispose();
        conn.close();
        throw err;
      });
      ctx.out.line(`dashboard at ${dashboard.url} for ${conn.dbName} on ${conn.displayUrl} (${server.kind} ${server.version}); Ctrl-C stops it`);
      await stop.requested;
      await dashboard.close();
      conn.close();
      stop.dispose();
    });
}

/** `after ui`: the web dashboard over the configured database, until Ctrl-C. */
import type { Command } from 'commander';
import { createLogger } from '../log';
import { detectServer, openConnection } from '../store/connection';
import { allowedHosts, LOOPBACK_NAMES } from '../ui/request-guard';
import { isLoopbackHost, startDashboard } from '../ui/server';
import type { CliContext } from './context';
import { collectHostNames, integerIn } from './options';
import { onStopSignal } from './signals';

/** Not 5984 (CouchDB's) nor 8080 (everybody's). */
export const DEFAULT_UI_PORT = 5990;

export function registerUiCommand(program: Command, ctx: CliContext): void {
  program
    .command('ui')
    .description('serve the web dashboard: charts, every task by status with search, bulk actions, schedules, instances; sign-in with the database\'s users')
    .option('--port <n>', 'port to listen on (0: any free port)', integerIn(0, 65535), DEFAULT_UI_PORT)
    .option('--host <host>', 'address to bind; on an address other than loopback every user signs in with a user of the database', '127.0.0.1')
    .option(
      '--allowed-host <name>',
      'also answer under this name or address (name[:port]; repeatable), e.g. a LAN address with --host 0.0.0.0, or a reverse proxy\'s name',
      collectHostNames,
      [] as string[],
    )
    .option('--login', 'ask for a user name and password of the database even on loopback (always asked on another address)', false)
    .action(async (opts: { port: number; host: string; allowedHost: string[]; login: boolean }) => {
      const config = ctx.config();
      const log = createLogger({ level: config.log.level });
      const conn = openConnection(config, { log });
      // Fail now, in one line, when the database is away, rather than serve a page of errors.
      const server = await detectServer(conn);
      const stop = onStopSignal();
      const dashboard = await startDashboard({
        conn,
        config,
        server,
        login: opts.login,
        port: opts.port,
        host: opts.host,
        allowedHosts: opts.allowedHost,
        heartbeatMs: config.worker.heartbeat_ms,
        log,
      }).catch((err) => {
        stop.dispose();
        conn.close();
        throw err;
      });
      ctx.out.line(`dashboard at ${dashboard.url} for ${conn.dbName} on ${conn.displayUrl} (${server.kind} ${server.version})${dashboard.loginRequired ? ', sign-in with the database\'s users' : ''}; Ctrl-C stops it`);
      const answersUnder = allowedHosts(opts.host, opts.allowedHost);
      if (!LOOPBACK_NAMES.includes(opts.host) && opts.host !== '::1') {
        const names = [...answersUnder.local, ...answersUnder.extra.map((h) => (h.port === undefined ? h.name : `${h.name}:${h.port}`))];
        const who = isLoopbackHost(opts.host) ? '' : " and asks every user to sign in with the database's users (serve it behind HTTPS: passwords cross the network)";
        ctx.out.warn(`after: the dashboard listens on ${opts.host}${who}. It answers only under ${names.join(', ')} (add names with --allowed-host)`);
      }
      await stop.requested;
      await dashboard.close();
      conn.close();
      stop.dispose();
    });
}

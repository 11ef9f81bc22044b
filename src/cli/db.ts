/**
 * `after db start|stop|status|credentials`: the embedded CouchDB-compatible server
 * (express-pouchdb). Its pid, state and admin files live in AFTER_HOME, so every command run
 * with the same home finds the same server.
 */
import type { Command } from 'commander';
import { AfterError } from '../errors';
import { adminFile, readAdminCredentials } from '../embedded/admin-credentials';
import { embeddedStatus, serverUrl, startEmbedded, stopEmbedded } from '../embedded/server';
import type { CliContext } from './context';
import { absolutePath, parsePort } from './options';
import { onStopSignal } from './signals';

/** `after db status` exit code when no server runs, as couchdb.sh and LSB init scripts do. */
export const EXIT_NOT_RUNNING = 3;

export function registerDbCommands(program: Command, ctx: CliContext): void {
  const db = program
    .command('db')
    .description('the embedded CouchDB-compatible server (pouchdb-server, LevelDB files on disk)');

  db.command('start')
    .description('start the embedded server (stays in the foreground until Ctrl-C unless -b)')
    .option('-b, --background', 'run detached; print its URL and pid and return')
    .option('--port <n>', 'port to listen on (default: embedded.port in config)', parsePort)
    .option('--dir <dir>', 'where the database files live (default: embedded.dir in config)', absolutePath)
    .action(async (opts: { background?: boolean; port?: number; dir?: string }) => {
      const config = ctx.config();
      const options = {
        host: config.embedded.host,
        port: opts.port ?? config.embedded.port,
        dir: opts.dir ?? config.embedded.dir,
        home: config.home,
        background: opts.background === true,
        allowedHosts: config.embedded.allowed_hosts,
        corsOrigins: config.embedded.cors_origins,
        maxDocumentSize: config.embedded.max_document_size,
        maxRequestSize: config.embedded.max_request_size,
        compactIntervalMs: config.embedded.compact_interval_ms,
        warmIntervalMs: config.embedded.warm_interval_ms,
      };
      if (options.background) {
        const server = await startEmbedded(options);
        ctx.out.line(`embedded server running at ${server.url} (pid ${server.pid}, data in ${options.dir})`);
        return;
      }
      // startEmbedded forwards Ctrl-C to the server; this only tells a requested stop apart
      // from a server that died on its own.
      const stop = onStopSignal();
      try {
        const server = await startEmbedded(options);
        ctx.out.line(`embedded server running at ${server.url} (pid ${server.pid}, data in ${options.dir}); Ctrl-C stops it`);
        const code = await (server.exited ?? Promise.resolve(0));
        if (stop.signal === null && code !== 0) {
          throw new AfterError('E_EMBEDDED_EXIT', `the embedded server exited with code ${code}`);
        }
      } finally {
        stop.dispose();
      }
    });

  db.command('stop')
    .description('stop the embedded server started from this AFTER_HOME')
    .action(async () => {
      const result = await stopEmbedded(ctx.config().home);
      if (result.stopped) ctx.out.line(`embedded server stopped (pid ${result.pid})`);
      else ctx.out.line('embedded server was not running');
    });

  db.command('status')
    .description(`say whether the embedded server runs (exit ${EXIT_NOT_RUNNING} when it does not)`)
    .action(async () => {
      const status = await embeddedStatus(ctx.config().home);
      if (!status.running) {
        ctx.out.line('embedded server not running');
        process.exitCode = EXIT_NOT_RUNNING;
        return;
      }
      const where = status.url ? ` at ${status.url}` : '';
      const dir = status.dir ? `, data in ${status.dir}` : '';
      ctx.out.line(`embedded server running${where} (pid ${status.pid}${dir})`);
    });

  db.command('credentials')
    .description("print the embedded server's admin URL, with its password (for curl or a CouchDB client)")
    .action(async () => {
      const config = ctx.config();
      const admin = readAdminCredentials(config.home);
      if (!admin) {
        throw new AfterError('E_DB_ADMIN', `no admin in ${adminFile(config.home)} yet; 'after db start' creates it`);
      }
      const status = await embeddedStatus(config.home);
      const url = new URL(status.url ?? serverUrl(config.embedded.host, config.embedded.port));
      url.username = encodeURIComponent(admin.name);
      url.password = encodeURIComponent(admin.password);
      // The one place After prints a password, on purpose: ctx.out scrubs credentials from URLs.
      process.stdout.write(`${url.toString().replace(/\/$/, '')}\n`);
    });
}

/**
 * `after ui`: one page (plain HTML and JavaScript modules from ./static, uPlot from the
 * package) and a JSON API over node:http, plus Server-Sent Events fed by the database's
 * `_changes` (live-stream.ts).
 *
 * The page never talks to the database and never receives its URL with credentials: this
 * server makes every request for it, narrowed to what the page needs (dashboard-connection.ts),
 * and hands out task data only. Who may use it (request-guard.ts, sessions.ts):
 * - every request must name the dashboard in `Host` by a name it was told about, whatever
 *   address it binds (DNS rebinding), else 421;
 * - served on a non-loopback address, or with `--login`, every API request needs a signed-in
 *   user of the database (sessions.ts), made with that user's own credentials; on loopback
 *   without `--login` it uses the configured connection, as before;
 * - an action (on a task, a bulk action, pausing a worker name, signing in) must come from the
 *   page's own `Origin` with the per-process token the page reads from index.html in the
 *   `x-after-token` header, else 403, and be JSON, else 400; acting takes the operator role;
 * - an id starting with `_` is refused (400 E_RESERVED_ID), and a document that is not a task
 *   is not found (404).
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../config/load';
import type { AfterConfig } from '../config/types';
import { AfterError, CouchRequestError, toError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { followAllTasks } from '../store/changes';
import { detectServer, type Connection } from '../store/connection';
import type { Feed, ServerInfo } from '../store/types';
import { handleApi, type ApiContext } from './api-routes';
import { BulkRuns } from './bulk-actions';
import { dashboardConnection } from './dashboard-connection';
import { JobNamesCache } from './dashboard-reads';
import { isTaskDoc, summarize } from './dashboard-data';
import { liveStreams } from './live-stream';
import { allowedHosts, hostAllowed, LOOPBACK_NAMES } from './request-guard';
import { Sessions } from './sessions';
import { loadAssets } from './static-files';

export { STATIC_DIR } from './static-files';

/** The header an action carries the page's token in (a custom header: no cross-site form or beacon can send it). */
export const TOKEN_HEADER = 'x-after-token';
const CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

export interface DashboardOptions {
  conn: Connection;
  /** The configuration `conn` was opened with: sign-in connects with the users' own credentials to its server. */
  config?: AfterConfig;
  /** The server behind `conn`. @default asked with `GET /` */
  server?: ServerInfo;
  /** @default 0 (any free port) */
  port?: number;
  /** Address to bind. @default "127.0.0.1" */
  host?: string;
  /**
   * Names (`name` or `name:port`) the page may be reached under besides the loopback names and
   * `host` itself: a LAN name or address, a reverse proxy's name. @default []
   */
  allowedHosts?: readonly string[];
  /** Ask for a user name and password even on loopback. Always on for another address. @default false */
  login?: boolean;
  /** `_changes` heartbeat. @default 10000 */
  heartbeatMs?: number;
  log?: Logger;
}

export interface Dashboard {
  /** `http://host:port/` */
  readonly url: string;
  /** Whether it asks its users to sign in. */
  readonly loginRequired: boolean;
  close(): Promise<void>;
}

/** Whether `host` is a loopback address (where, without --login, the dashboard asks for no sign-in). */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase();
  return LOOPBACK_NAMES.includes(name) || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const server = options.server ?? (await detectServer(options.conn));
  const conn = dashboardConnection(options.conn);
  const loginRequired = options.login === true || !isLoopbackHost(host);
  if (loginRequired && !options.config) throw new AfterError('E_UI', 'a dashboard that asks for sign-in needs the configuration (startDashboard({ config }))');
  const allowed = allowedHosts(host, options.allowedHosts ?? []);
  // New at every start: a page from an earlier run must be reloaded before it may act.
  const token = randomBytes(32).toString('base64url');
  const assets = loadAssets(token);
  const live = liveStreams();
  const sessions = options.config ? new Sessions({ config: options.config, kind: server.kind, log }) : undefined;
  const config = options.config ?? parseConfig({}, { file: '(defaults)', base: process.cwd() });
  const context: ApiContext = { conn, kind: server.kind, config, loginRequired, sessions, bulk: new BulkRuns(log), jobNames: new JobNamesCache(), token, live, log };

  const feed: Feed = await followAllTasks(conn, {
    heartbeatMs: options.heartbeatMs ?? 10_000,
    log,
    onDocs: (docs) => {
      for (const doc of docs) if (doc._deleted || isTaskDoc(doc)) live.changed(doc._id, summarize(doc));
    },
    onReconnect: () => live.resync(),
  });

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, err, log));
  });
  let boundPort = 0;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (!hostAllowed(req.headers.host, allowed, boundPort)) {
      return sendJson(res, 421, { error: 'E_HOST', message: 'this dashboard answers only under the names it was given (after ui --allowed-host)' });
    }
    const method = req.method ?? 'GET';
    const asset = assets.get(url.pathname);
    if (asset !== undefined && method === 'GET') {
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': CSP,
        'referrer-policy': 'no-referrer',
      });
      res.end(asset.body);
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, { 'cache-control': 'max-age=86400' });
      res.end();
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      const answer = await handleApi(context, req, res, url);
      if (answer === 'streamed') return;
      if (answer !== undefined) return sendJson(res, answer.status ?? 200, answer.body, answer.headers);
    }
    sendJson(res, 404, { error: 'E_NOT_FOUND', message: `no such page: ${method} ${url.pathname}` });
  }

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new AfterError('E_PORT_TAKEN', `port ${host}:${options.port ?? 0} is already in use; choose another with --port`)
          : new AfterError('E_UI', `cannot serve the dashboard on ${host}:${options.port ?? 0}: ${err.message}`),
      );
    });
    httpServer.listen({ port: options.port ?? 0, host }, resolve);
  }).catch(async (err) => {
    await feed.stop();
    throw err;
  });
  const address = httpServer.address() as AddressInfo;
  boundPort = address.port;
  // Bound to every interface, the page is reached under a loopback name (or an --allowed-host).
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const shownHost = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${shownHost}:${address.port}/`,
    loginRequired,
    async close() {
      live.close();
      sessions?.closeAll();
      await feed.stop();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
    },
  };
}

const STATUS_BY_CODE: Record<string, number> = {
  E_USAGE: 400,
  E_ACTION: 409,
  E_CONFLICT: 409,
  E_TASK_NOT_FOUND: 404,
  E_ORIGIN: 403,
  E_TOKEN: 403,
  E_RESERVED_ID: 400,
  E_FORBIDDEN: 403,
  E_NOT_INITIALIZED: 503,
  E_SIGN_IN: 401,
  E_NOT_MEMBER: 403,
  E_NOT_OPERATOR: 403,
  E_SIGN_IN_LIMIT: 429,
};

/** Errors as `{error: code, message}`; messages come from AfterError, which never carries credentials. */
function sendError(res: http.ServerResponse, thrown: unknown, log: Logger): void {
  const err = toError(thrown);
  const code = err instanceof AfterError ? err.code : 'E_INTERNAL';
  // The user's own connection refused (no longer a member, the session cookie expired): 403.
  const status = STATUS_BY_CODE[code] ?? (err instanceof CouchRequestError ? (err.status === 401 || err.status === 403 ? 403 : 502) : 500);
  if (status >= 500) log.error(`dashboard: ${err.message}`);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, status, { error: code, message: err instanceof AfterError ? err.message : 'internal error (see the server log)' });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * `after ui`: one page (plain HTML and JS from ./static, no build step) and a small JSON API
 * over node:http, plus Server-Sent Events fed by the database's `_changes`.
 *
 * The page never talks to the database and never receives its URL with credentials: this
 * server makes every request with the worker's connection, narrowed to what the page needs
 * (dashboard-connection.ts), and hands out task data only. Since anyone who can reach the page
 * can act on tasks, it binds 127.0.0.1 by default, and (request-guard.ts):
 * - every request must name the dashboard in `Host` by a name it was told about, whatever
 *   address it binds (DNS rebinding), else 421;
 * - an action (on a task, or pausing and resuming a worker name) must come from the page's own
 *   `Origin` with the per-process token the page reads
 *   from index.html in the `x-after-token` header, else 403, and be JSON, else 400;
 * - an id starting with `_` is refused (400 E_RESERVED_ID), and a document that is not a task
 *   is not found (404).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { AfterError, CouchRequestError, toError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { followAllTasks } from '../store/changes';
import type { Connection } from '../store/connection';
import type { Feed } from '../store/types';
import { dashboardConnection } from './dashboard-connection';
import { applyAction, applyWorkerAction, checkTaskId, isTaskDoc, readDependencies, readOverview, readTask, summarize, TASK_ACTIONS, WORKER_ACTIONS, type TaskAction, type WorkerAction } from './dashboard-data';
import { allowedHosts, hostAllowed, sameOrigin, tokenMatches } from './request-guard';

/** dist/src/ui/server.js (or src/ui/server.ts under ts-node) → <package>/src/ui/static */
export const STATIC_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'ui', 'static');

const STATIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};
/** A comment line on every SSE stream this often, so proxies and the browser keep it open. */
const SSE_PING_MS = 15_000;
const MAX_BODY_BYTES = 64 * 1024;
/** The header an action carries the page's token in (a custom header: no cross-site form or beacon can send it). */
export const TOKEN_HEADER = 'x-after-token';
/** Where index.html holds the token for app.js. */
const TOKEN_META = '<meta name="after-token" content="">';

export interface DashboardOptions {
  conn: Connection;
  /** @default 0 (any free port) */
  port?: number;
  /** Address to bind. @default "127.0.0.1" */
  host?: string;
  /**
   * Names (`name` or `name:port`) the page may be reached under besides the loopback names and
   * `host` itself: a LAN name or address, a reverse proxy's name. @default []
   */
  allowedHosts?: readonly string[];
  /** `_changes` heartbeat. @default 10000 */
  heartbeatMs?: number;
  log?: Logger;
}

export interface Dashboard {
  /** `http://host:port/` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const conn = dashboardConnection(options.conn);
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const allowed = allowedHosts(host, options.allowedHosts ?? []);
  // New at every start: a page from an earlier run must be reloaded before it may act.
  const token = randomBytes(32).toString('base64url');
  const assets = loadAssets(token);
  const streams = new Set<http.ServerResponse>();

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };
  const feed: Feed = await followAllTasks(conn, {
    heartbeatMs: options.heartbeatMs ?? 10_000,
    log,
    onDocs: (docs) => {
      for (const doc of docs) if (doc._deleted || isTaskDoc(doc)) broadcast('task', summarize(doc));
    },
    onReconnect: () => broadcast('resync', {}),
  });

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, err, log));
  });
  let boundPort = 0;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (!hostAllowed(req.headers.host, allowed, boundPort)) {
      return sendJson(res, 421, { error: 'E_HOST', message: 'this dashboard answers only under the names it was given (after ui --allowed-host)' });
    }
    const method = req.method ?? 'GET';
    const asset = STATIC_FILES[url.pathname];
    if (asset !== undefined && method === 'GET') {
      const file = assets.get(asset)!;
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(asset)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        'referrer-policy': 'no-referrer',
      });
      res.end(file);
      return;
    }
    if (url.pathname === '/api/events' && method === 'GET') return openStream(req, res);
    if (url.pathname === '/api/overview' && method === 'GET') return sendJson(res, 200, await readOverview(conn));
    const taskRoute = /^\/api\/tasks\/([^/]+)(\/actions|\/after)?$/.exec(url.pathname);
    if (taskRoute) {
      const id = checkTaskId(decodeId(taskRoute[1]!));
      if (!taskRoute[2] && method === 'GET') return sendJson(res, 200, await readTask(conn, id));
      if (taskRoute[2] === '/after' && method === 'GET') return sendJson(res, 200, await readDependencies(conn, id));
      if (taskRoute[2] === '/actions' && method === 'POST') {
        checkActionRequest(req, token);
        const body = await readJsonBody(req);
        const action = body.action as TaskAction;
        if (!TASK_ACTIONS.includes(action)) throw new AfterError('E_USAGE', `action must be one of ${TASK_ACTIONS.join(', ')}`);
        const updated = await applyAction(conn, id, action, typeof body.date === 'string' ? body.date : undefined);
        log.info(`dashboard: ${action} task ${id} -> ${String(updated.status)}`);
        return sendJson(res, 200, updated);
      }
    }
    const workerRoute = /^\/api\/workers\/([^/]+)\/actions$/.exec(url.pathname);
    if (workerRoute && method === 'POST') {
      checkActionRequest(req, token);
      const worker = decodeId(workerRoute[1]!);
      const body = await readJsonBody(req);
      const action = body.action as WorkerAction;
      if (!WORKER_ACTIONS.includes(action)) throw new AfterError('E_USAGE', `action must be one of ${WORKER_ACTIONS.join(', ')}`);
      const report = await applyWorkerAction(conn, worker, action);
      log.info(`dashboard: ${action} worker ${worker} -> ${report.paused ? 'paused' : 'running'}`);
      return sendJson(res, 200, report);
    }
    sendJson(res, 404, { error: 'E_NOT_FOUND', message: `no such page: ${method} ${url.pathname}` });
  }

  function openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // Tell EventSource to reconnect quickly after the server restarts.
    res.write('retry: 2000\n\nevent: hello\ndata: {}\n\n');
    streams.add(res);
    const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
    req.on('close', () => {
      clearInterval(ping);
      streams.delete(res);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new AfterError('E_PORT_TAKEN', `port ${host}:${options.port ?? 0} is already in use; choose another with --port`)
          : new AfterError('E_UI', `cannot serve the dashboard on ${host}:${options.port ?? 0}: ${err.message}`),
      );
    });
    server.listen({ port: options.port ?? 0, host }, resolve);
  }).catch(async (err) => {
    await feed.stop();
    throw err;
  });
  const address = server.address() as AddressInfo;
  boundPort = address.port;
  // Bound to every interface, the page is reached under a loopback name (or an --allowed-host).
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const shownHost = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${shownHost}:${address.port}/`,
    async close() {
      for (const res of streams) res.end();
      streams.clear();
      await feed.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The static files, index.html with this process's token in its meta tag. */
function loadAssets(token: string): Map<string, Buffer> {
  const assets = new Map<string, Buffer>();
  for (const name of Object.values(STATIC_FILES)) {
    const file = path.join(STATIC_DIR, name);
    try {
      assets.set(name, fs.readFileSync(file));
    } catch (err) {
      throw new AfterError('E_UI', `dashboard file ${file} cannot be read (${(err as Error).message}); is the package complete?`);
    }
  }
  const index = assets.get('index.html')!.toString('utf8');
  if (!index.includes(TOKEN_META)) throw new AfterError('E_UI', `dashboard file ${path.join(STATIC_DIR, 'index.html')} has no token meta tag; is the package complete?`);
  assets.set('index.html', Buffer.from(index.replace(TOKEN_META, `<meta name="after-token" content="${token}">`)));
  return assets;
}

/** A path segment as an id; a malformed %-escape is a bad request, not a crash. */
function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AfterError('E_USAGE', 'the task id in the path is not valid percent-encoding');
  }
}

/**
 * An action comes from the page itself: its own Origin (browsers send one with every POST;
 * scripts and webhooks send none) and the token only the page could read.
 */
function checkActionRequest(req: http.IncomingMessage, token: string): void {
  if (!sameOrigin(req.headers.origin, req.headers.host)) {
    throw new AfterError('E_ORIGIN', 'actions are taken only from the dashboard page itself (its own Origin header)');
  }
  if (!tokenMatches(req.headers[TOKEN_HEADER], token)) {
    throw new AfterError('E_TOKEN', 'this action lacks the page\'s token; reload the dashboard page');
  }
}

async function readJsonBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new AfterError('E_USAGE', 'actions take a JSON body (content-type: application/json)');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AfterError('E_USAGE', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw new AfterError('E_USAGE', 'the request body is not a JSON object');
  }
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
};

/** Errors as `{error: code, message}`; messages come from AfterError, which never carries credentials. */
function sendError(res: http.ServerResponse, thrown: unknown, log: Logger): void {
  const err = toError(thrown);
  const code = err instanceof AfterError ? err.code : 'E_INTERNAL';
  const status = STATUS_BY_CODE[code] ?? (err instanceof CouchRequestError ? 502 : 500);
  if (status >= 500) log.error(`dashboard: ${err.message}`);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, status, { error: code, message: err instanceof AfterError ? err.message : 'internal error (see the server log)' });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

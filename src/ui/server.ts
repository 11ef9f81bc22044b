/**
 * `after ui`: one page (plain HTML and JS from ./static, no build step) and a small JSON API
 * over node:http, plus Server-Sent Events fed by the database's `_changes`.
 *
 * The page never talks to the database and never receives its URL with credentials: this
 * server makes every request with the configured credentials and hands out task data only.
 * Since anyone who can reach the page can act on tasks with those credentials, it binds
 * 127.0.0.1 by default, and requests that change something must be JSON from the page's own
 * origin (a cross-site form cannot send `application/json`; a foreign `Origin` is refused), and
 * must name this server in `Host` when it listens on loopback (DNS rebinding).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { AfterError, CouchRequestError, toError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { getTask } from '../store/admin';
import type { Connection } from '../store/connection';
import { applyAction, readOverview, summarize, TASK_ACTIONS, type TaskAction } from './dashboard-data';
import { followAllTasks, type TaskFeed } from './task-feed';

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

export interface DashboardOptions {
  conn: Connection;
  /** @default 0 (any free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
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
  const { conn } = options;
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const assets = loadAssets();
  const streams = new Set<http.ServerResponse>();

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };
  const feed: TaskFeed = await followAllTasks(conn, {
    heartbeatMs: options.heartbeatMs ?? 10_000,
    log,
    onDocs: (docs) => {
      for (const doc of docs) broadcast('task', summarize(doc));
    },
    onReconnect: () => broadcast('resync', {}),
  });

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, err, log));
  });
  let boundPort = 0;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (!hostAllowed(req.headers.host, host, boundPort)) {
      return sendJson(res, 421, { error: 'E_HOST', message: 'this dashboard answers only under its own address' });
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
      });
      res.end(file);
      return;
    }
    if (url.pathname === '/api/events' && method === 'GET') return openStream(req, res);
    if (url.pathname === '/api/overview' && method === 'GET') return sendJson(res, 200, await readOverview(conn));
    const taskRoute = /^\/api\/tasks\/([^/]+)(\/actions)?$/.exec(url.pathname);
    if (taskRoute) {
      const id = decodeURIComponent(taskRoute[1]!);
      if (!taskRoute[2] && method === 'GET') return sendJson(res, 200, await getTask(conn, id));
      if (taskRoute[2] && method === 'POST') {
        const body = await readJsonBody(req, host, boundPort);
        const action = body.action as TaskAction;
        if (!TASK_ACTIONS.includes(action)) throw new AfterError('E_USAGE', `action must be one of ${TASK_ACTIONS.join(', ')}`);
        const updated = await applyAction(conn, id, action, typeof body.date === 'string' ? body.date : undefined);
        log.info(`dashboard: ${action} task ${id} -> ${String(updated.status)}`);
        return sendJson(res, 200, updated);
      }
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
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

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

function loadAssets(): Map<string, Buffer> {
  const assets = new Map<string, Buffer>();
  for (const name of Object.values(STATIC_FILES)) {
    const file = path.join(STATIC_DIR, name);
    try {
      assets.set(name, fs.readFileSync(file));
    } catch (err) {
      throw new AfterError('E_UI', `dashboard file ${file} cannot be read (${(err as Error).message}); is the package complete?`);
    }
  }
  return assets;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]', '::1'];

/**
 * On loopback, only requests addressed to loopback names: a web page whose DNS name is made to
 * point at 127.0.0.1 (DNS rebinding) sends its own name in `Host` and is refused.
 */
function hostAllowed(hostHeader: string | undefined, boundHost: string, port: number): boolean {
  if (!LOOPBACK_NAMES.includes(boundHost)) return true;
  if (!hostHeader) return false;
  const name = hostHeader.replace(new RegExp(`:${port}$`), '');
  return LOOPBACK_NAMES.includes(name);
}

async function readJsonBody(req: http.IncomingMessage, boundHost: string, port: number): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new AfterError('E_USAGE', 'actions take a JSON body (content-type: application/json)');
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = '';
    }
    if (originHost !== req.headers.host || !hostAllowed(originHost, boundHost, port)) {
      throw new AfterError('E_ORIGIN', `requests from ${origin} may not act on tasks`);
    }
  }
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

/**
 * The dashboard's JSON API, one route table:
 *
 * | route | answers |
 * | --- | --- |
 * | `GET /api/session`, `POST` (sign in), `DELETE` (sign out) | who is signed in, and whether sign-in is asked |
 * | `GET /api/overview` | counts, instances, paused names, next due, recent failures |
 * | `GET /api/counts` | counts by worker and status, and how far behind their index is |
 * | `GET /api/charts?range=realtime\|hours\|days&worker=` | run figures (done, failed, retried, lateness p50/p99) |
 * | `GET /api/tasks?status=&worker=&job=&order=&limit=&after=` | a list page (keyset cursor `after`) |
 * | `GET /api/search?q=` | tasks by id prefix, job names |
 * | `GET /api/jobs` | job names with their counts |
 * | `GET /api/schedules?worker=&after=` | repeating tasks, their rule in words |
 * | `GET /api/tasks/<id>`, `/story`, `/after` | a task, its story, what it waits for |
 * | `POST /api/tasks/<id>/actions`, `POST /api/workers/<name>/actions` | single actions |
 * | `POST /api/bulk`, `GET /api/bulk/<id>` | a bulk action, its progress |
 * | `GET /api/events` | the live stream |
 */
import type * as http from 'node:http';
import type { AfterConfig } from '../config/types';
import { AfterError } from '../errors';
import type { Logger } from '../log';
import type { Connection } from '../store/connection';
import type { ReadSide } from '../store/for-operators/read-views';
import { CHART_RANGES, readRunSeries, type ChartRange } from '../store/for-operators/run-stats';
import { readStatusCountsWithLag } from '../store/for-operators/task-counts';
import { STATUS_GROUP_NAMES, type PageCursor, type StatusGroup } from '../store/for-operators/task-pages';
import type { ServerKind } from '../store/types';
import { BulkRuns, type BulkRequest } from './bulk-actions';
import { applyAction, applyWorkerAction, checkTaskId, readDependencies, readTask, TASK_ACTIONS, WORKER_ACTIONS, type TaskAction, type WorkerAction } from './dashboard-data';
import { readListPage, readOverview, readSchedules, readSearch, readStory, type JobNamesCache } from './dashboard-reads';
import type { LiveStreams } from './live-stream';
import { sameOrigin, tokenMatches } from './request-guard';
import { sessionCookie, type DashboardUser, type Sessions } from './sessions';

export interface ApiContext {
  /** The configured connection, narrowed (dashboard-connection.ts). */
  conn: Connection;
  kind: ServerKind;
  /** Limits, claim grace, operator role; the defaults when the dashboard was given none. */
  config: AfterConfig;
  loginRequired: boolean;
  sessions: Sessions | undefined;
  bulk: BulkRuns;
  /** Job names for the search and the filters, read at most once a minute. */
  jobNames: JobNamesCache;
  token: string;
  live: LiveStreams;
  log: Logger;
}

export interface Answer {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

const TOKEN_HEADER = 'x-after-token';
const MAX_BODY_BYTES = 64 * 1024;
const NOBODY: DashboardUser = { name: null, roles: [], canAct: true };

/** The answer to an API request; 'streamed' when the response was taken over (the live stream); undefined: no such route. */
export async function handleApi(ctx: ApiContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<Answer | 'streamed' | undefined> {
  const method = req.method ?? 'GET';
  const path = url.pathname;
  if (path === '/api/session') return sessionRoute(ctx, req, method);

  const { read, user } = whoAsks(ctx, req);
  const q = (name: string): string | undefined => url.searchParams.get(name) ?? undefined;

  if (method === 'GET') {
    if (path === '/api/events') {
      ctx.live.open(req, res);
      return 'streamed';
    }
    if (path === '/api/overview') return { body: await readOverview(read) };
    if (path === '/api/counts') return { body: await readStatusCountsWithLag(read) };
    if (path === '/api/charts') {
      const range = (q('range') ?? 'realtime') as ChartRange;
      if (!CHART_RANGES.includes(range)) throw new AfterError('E_USAGE', `range must be one of ${CHART_RANGES.join(', ')}`);
      return { body: await readRunSeries(read, { range, ...optional('worker', q('worker')) }) };
    }
    if (path === '/api/tasks') {
      const status = (q('status') ?? 'waiting') as StatusGroup;
      if (!STATUS_GROUP_NAMES.includes(status)) throw new AfterError('E_USAGE', `status must be one of ${STATUS_GROUP_NAMES.join(', ')}`);
      const order = q('order') === 'desc' ? 'desc' : 'asc';
      return {
        body: await readListPage(
          read,
          { status, order, limit: limitOf(q('limit')), ...optional('worker', q('worker')), ...optional('job', q('job')), ...optional('before', q('before')), ...cursorOf(q('after')) },
          ctx.config,
        ),
      };
    }
    if (path === '/api/search') return { body: await readSearch(read, q('q') ?? '', ctx.jobNames, q('after')) };
    if (path === '/api/jobs') return { body: await ctx.jobNames.get(read) };
    if (path === '/api/schedules') return { body: await readSchedules(read, { limit: limitOf(q('limit')), ...optional('worker', q('worker')), ...cursorOf(q('after')) }) };
    const bulkRoute = /^\/api\/bulk\/([0-9a-f]+)$/.exec(path);
    if (bulkRoute) {
      const progress = ctx.bulk.get(bulkRoute[1]!);
      if (!progress) throw new AfterError('E_TASK_NOT_FOUND', 'no such bulk action (they are kept an hour)');
      return { body: progress };
    }
  }

  const taskRoute = /^\/api\/tasks\/([^/]+)(\/actions|\/after|\/story)?$/.exec(path);
  if (taskRoute) {
    const id = checkTaskId(decodeId(taskRoute[1]!));
    if (method === 'GET' && !taskRoute[2]) return { body: await readTask(read.conn, id) };
    if (method === 'GET' && taskRoute[2] === '/after') return { body: await readDependencies(read.conn, id) };
    if (method === 'GET' && taskRoute[2] === '/story') return { body: await readStory(read, id, ctx.config) };
    if (method === 'POST' && taskRoute[2] === '/actions') {
      const body = await actionBody(ctx, req, user);
      const action = body.action as TaskAction;
      if (!TASK_ACTIONS.includes(action)) throw new AfterError('E_USAGE', `action must be one of ${TASK_ACTIONS.join(', ')}`);
      const updated = await applyAction(read.conn, id, action, typeof body.date === 'string' ? body.date : undefined);
      ctx.log.info(`dashboard: ${who(user)}${action} task ${id} -> ${String(updated.status)}`);
      return { body: updated };
    }
  }
  const workerRoute = /^\/api\/workers\/([^/]+)\/actions$/.exec(path);
  if (workerRoute && method === 'POST') {
    const body = await actionBody(ctx, req, user);
    const worker = decodeId(workerRoute[1]!);
    const action = body.action as WorkerAction;
    if (!WORKER_ACTIONS.includes(action)) throw new AfterError('E_USAGE', `action must be one of ${WORKER_ACTIONS.join(', ')}`);
    const report = await applyWorkerAction(read.conn, worker, action);
    ctx.log.info(`dashboard: ${who(user)}${action} worker ${worker} -> ${report.paused ? 'paused' : 'running'}`);
    return { body: report };
  }
  if (path === '/api/bulk' && method === 'POST') {
    const body = await actionBody(ctx, req, user);
    return { status: 202, body: ctx.bulk.start(read, body as unknown as BulkRequest, user.name ?? 'dashboard') };
  }
  return undefined;
}

/** The reader and the user behind a request: a signed-in user's own connection, or the configured one. */
function whoAsks(ctx: ApiContext, req: http.IncomingMessage): { read: ReadSide; user: DashboardUser } {
  if (!ctx.loginRequired) return { read: { conn: ctx.conn, kind: ctx.kind }, user: NOBODY };
  const session = ctx.sessions?.get(req.headers.cookie);
  if (!session) throw new AfterError('E_SIGN_IN', 'sign in first');
  return { read: { conn: session.conn, kind: ctx.kind }, user: session.user };
}

async function sessionRoute(ctx: ApiContext, req: http.IncomingMessage, method: string): Promise<Answer> {
  if (method === 'GET') {
    const session = ctx.loginRequired ? ctx.sessions?.get(req.headers.cookie) : undefined;
    return { body: { required: ctx.loginRequired, user: ctx.loginRequired ? (session?.user ?? null) : NOBODY } };
  }
  if (method === 'POST') {
    checkFromPage(ctx, req);
    if (!ctx.loginRequired || !ctx.sessions) throw new AfterError('E_USAGE', 'this dashboard asks for no sign-in (start it with --login)');
    const body = await readJsonBody(req);
    const name = typeof body.name === 'string' ? body.name : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const session = await ctx.sessions.signIn(name, password, req.socket.remoteAddress ?? 'unknown');
    const maxAgeS = Math.round((ctx.config.ui.session_idle_ms) / 1000);
    return { body: { required: true, user: session.user }, headers: { 'set-cookie': sessionCookie(session.id, maxAgeS) } };
  }
  if (method === 'DELETE') {
    checkFromPage(ctx, req);
    const session = ctx.sessions?.get(req.headers.cookie);
    if (session) ctx.sessions!.end(session.id);
    return { body: { required: ctx.loginRequired, user: null }, headers: { 'set-cookie': sessionCookie('', 0) } };
  }
  throw new AfterError('E_USAGE', `${method} /api/session is not an action`);
}

/** An action's body, from the page itself, by a user who may act. */
async function actionBody(ctx: ApiContext, req: http.IncomingMessage, user: DashboardUser): Promise<Record<string, unknown>> {
  checkFromPage(ctx, req);
  if (!user.canAct) throw new AfterError('E_NOT_OPERATOR', `${user.name ?? 'this user'} may read but not act: acting takes the role ${ctx.config.ui.operator_role} or an admin`);
  return readJsonBody(req);
}

/**
 * An action comes from the page itself: its own Origin (browsers send one with every POST;
 * scripts and webhooks send none) and the token only the page could read.
 */
function checkFromPage(ctx: ApiContext, req: http.IncomingMessage): void {
  if (!sameOrigin(req.headers.origin, req.headers.host)) {
    throw new AfterError('E_ORIGIN', 'actions are taken only from the dashboard page itself (its own Origin header)');
  }
  if (!tokenMatches(req.headers[TOKEN_HEADER], ctx.token)) {
    throw new AfterError('E_TOKEN', "this action lacks the page's token; reload the dashboard page");
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

/** A path segment as an id; a malformed %-escape is a bad request, not a crash. */
function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AfterError('E_USAGE', 'the task id in the path is not valid percent-encoding');
  }
}

/** `after=<date>|<id>` as the page sends a list's cursor back. */
function cursorOf(value: string | undefined): { cursor?: PageCursor } {
  if (value === undefined || value === '') return {};
  const bar = value.indexOf('|');
  if (bar < 0) throw new AfterError('E_USAGE', 'after= is the cursor a page gave: <date>|<id>');
  return { cursor: { date: value.slice(0, bar), id: value.slice(bar + 1) } };
}

function limitOf(value: string | undefined): number {
  const n = Number(value ?? 50);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new AfterError('E_USAGE', 'limit must be a whole number from 1 to 500');
  return n;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined || value === '' ? {} : ({ [key]: value } as Record<K, string>);
}

function who(user: DashboardUser): string {
  return user.name === null ? '' : `${user.name}: `;
}

/**
 * The middleware in front of express-pouchdb in the embedded server (launcher.ts). In order:
 *
 * 1. the Host header must name this server (loopback names, the bound address,
 *    `embedded.allowed_hosts`): a page that rebinds its own DNS name to 127.0.0.1 is refused;
 * 2. a request with an `Origin` header (browsers send one on every cross-site POST, PUT,
 *    DELETE and preflight) is refused unless the origin is in `embedded.cors_origins`; those
 *    get CORS headers, nothing else does;
 * 3. cookies are dropped: credentials come with each request (HTTP Basic), so a browser's
 *    ambient session can never act for a page;
 * 4. credentials are checked here, an admin's against the server's config and a user's against
 *    `_users`: a wrong password is a 401 whatever the request;
 * 5. the route decides who may make the request (guard-rules.ts); a request without admin
 *    credentials is accepted only from loopback (or from a named user) and only on the allowlist;
 * 6. a request to a database with `_security` members is refused to anyone who is not one
 *    (database-access.ts), before express-pouchdb sees it, on every route;
 * 7. bodies are held to the size limits, a non-admin's documents may not be design documents,
 *    and a non-admin's Mango selector may not use `$regex` (query-rules.ts).
 *
 * Refusals are CouchDB-style JSON: `{"error": "unauthorized" | "forbidden" | ..., "reason": ...}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_DOCUMENT_DEPTH } from '../task/validate';
import { verifyAdminPassword } from './admin-credentials';
import { membershipRefusal, userFromDocument, WRONG_PASSWORD, type Refusal, type Requester, type SecurityObject, type UserDocument } from './database-access';
import {
  allowedHostValues,
  documentWriteProblem,
  hostAllowed,
  isLoopback,
  jsonStringOrSelf,
  documentShapeProblem,
  oversizedDocument,
  shapeMayBeWrong,
  routeRule,
  type RouteRule,
} from './guard-rules';
import { selectorFromQuery, selectorProblem } from './query-rules';

export interface GuardSettings {
  port: number;
  /** The address the server binds (its own Host value is allowed). */
  bindHost: string;
  /** More Host names this server answers to (`name` or `name:port`). */
  allowedHosts: readonly string[];
  /** Web origins (`https://app.example.com`) allowed to call the server from a browser. */
  corsOrigins: readonly string[];
  /** Largest document (JSON body of a single write, or one document of a `_bulk_docs`). */
  maxDocumentBytes: number;
  /** Largest `_bulk_docs` body. */
  maxRequestBytes: number;
  /** The `admins` section of the server's config (name → `-pbkdf2-` hash), read per request. */
  admins(): Record<string, string>;
  /** The `_users` document of `name` (`org.couchdb.user:<name>`), or null. */
  userDocument(name: string): Promise<UserDocument | null>;
  /** The `_security` object of database `name`; null when there is no such database. */
  securityOf(name: string): Promise<SecurityObject | null>;
}

/** The parts of express's request the guard reads and sets. */
interface GuardRequest extends IncomingMessage {
  query?: Record<string, unknown>;
  body?: unknown;
}

type Next = (err?: unknown) => void;
type Middleware = (req: GuardRequest, res: ServerResponse, next: Next) => void;
type JsonParser = (req: IncomingMessage, res: ServerResponse, next: (err?: BodyParserError) => void) => void;

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

const CORS_METHODS = 'GET, HEAD, POST, PUT, DELETE, COPY';
const CORS_REQUEST_HEADERS = new Set(['accept', 'authorization', 'content-type', 'destination', 'if-match', 'if-none-match', 'origin', 'referer', 'x-requested-with']);
const CORS_EXPOSED_HEADERS = 'cache-control, content-type, etag, server, x-couch-request-id, x-couch-update-newrev';
/** Where body-parser leaves the raw bytes of what it parsed (its `verify` hook). */
const BODY_TEXT = Symbol('bodyText');

export function createGuard(settings: GuardSettings): Middleware {
  const hosts = allowedHostValues(settings.port, settings.bindHost, settings.allowedHosts);
  const origins = new Set(settings.corsOrigins.map(normalizeOrigin));
  // body-parser is what express-pouchdb parses JSON with: the same reading of every body.
  // It marks a parsed request (`req._body`), so express-pouchdb's own parser skips it.
  const bodyParser = require('body-parser') as { json(options: Record<string, unknown>): JsonParser };
  const verify = (req: IncomingMessage, _res: ServerResponse, buf: Buffer): void => {
    (req as unknown as Record<symbol, Buffer>)[BODY_TEXT] = buf;
  };
  const documentParser = bodyParser.json({ limit: settings.maxDocumentBytes, verify });
  const bulkParser = bodyParser.json({ limit: settings.maxRequestBytes, verify });

  return (req, res, next) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';

    if (!hostAllowed(req.headers.host, hosts)) {
      return refuse(res, 403, 'forbidden', `Host ${JSON.stringify(req.headers.host ?? '')} is not a name of this server (add it to embedded.allowed_hosts)`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(normalizeOrigin(origin))) {
        return refuse(res, 403, 'forbidden', `requests from web pages at ${origin.slice(0, 100)} are refused (list allowed origins in embedded.cors_origins)`);
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
      if (method === 'OPTIONS') return answerPreflight(req, res);
      res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
    } else if (method === 'OPTIONS') {
      res.setHeader('Allow', CORS_METHODS);
      res.statusCode = 204;
      return res.end();
    }
    delete req.headers.cookie;

    const rule = routeRule(method, url);
    if (rule.access === 'nobody') return refuse(res, rule.status ?? 400, rule.status === 403 ? 'forbidden' : 'bad_request', rule.reason ?? 'refused');

    void authenticate(req.headers.authorization, settings)
      .then(async (identity) => {
        if (identity === null) return refuseWith(res, WRONG_PASSWORD);
        if (identity.kind !== 'admin') {
          const refusal = accessRefusal(rule, identity, req.socket.remoteAddress);
          if (refusal) return refuse(res, refusal.status, refusal.error, refusal.reason);
          if (rule.database !== undefined) {
            const security = await settings.securityOf(rule.database);
            // No such database: express-pouchdb answers 404, as CouchDB does before any check.
            const notMember = security === null ? null : membershipRefusal(identity, security);
            if (notMember) return refuseWith(res, notMember);
          }
        }
        admitBody(req, res, next, rule, identity, settings, { documentParser, bulkParser });
      })
      .catch((err: unknown) => {
        if (!res.headersSent) refuse(res, 500, 'internal_server_error', `the guard could not check the request: ${err instanceof Error ? err.message : String(err)}`);
      });
  };
}

/**
 * The body of an admitted request: held to the size limits and, for a non-admin, checked for
 * design documents and `$regex`; then express-pouchdb takes the request.
 */
function admitBody(
  req: GuardRequest,
  res: ServerResponse,
  next: Next,
  rule: RouteRule,
  identity: Requester,
  settings: GuardSettings,
  parsers: { documentParser: JsonParser; bulkParser: JsonParser },
): void {
  const isAdmin = identity.kind === 'admin';
  const length = contentLength(req);
  const limit = rule.body === 'bulk' ? settings.maxRequestBytes : settings.maxDocumentBytes;
  if (length !== undefined && length > limit) return afterBody(req, res, () => tooLarge(res, rule.body, settings));
  // A non-admin's documents may not be design documents: checked once the body is read.
  const writeRefusal = (): boolean => {
    if (isAdmin || !rule.writes) return false;
    const problem = documentWriteProblem(rule.writes, {
      body: req.body,
      queryId: jsonQueryValue(req.query?.id),
      destination: headerValue(req.headers.destination),
      contentType: headerValue(req.headers['content-type']),
    });
    if (!problem) return false;
    refuse(res, identity.kind === 'anonymous' ? 401 : 403, identity.kind === 'anonymous' ? 'unauthorized' : 'forbidden', problem);
    return true;
  };
  const selectorRefusal = (): boolean => {
    if (isAdmin || rule.selector === undefined) return false;
    const selector = rule.selector === 'body' ? (req.body as { selector?: unknown } | undefined)?.selector : selectorFromQuery(queryParameter(req.url, 'selector'));
    const problem = selectorProblem(selector);
    if (!problem) return false;
    refuse(res, 400, 'bad_request', problem);
    return true;
  };

  if (rule.body === 'raw') {
    if (length === undefined && hasBody(req) && !isAdmin) {
      return refuse(res, 411, 'length_required', 'attachments need a Content-Length header on the embedded server');
    }
    if (writeRefusal() || selectorRefusal()) return;
    return next();
  }

  const parser = rule.body === 'bulk' ? parsers.bulkParser : parsers.documentParser;
  parser(req, res, (err) => {
    if (err) return bodyError(res, err, rule.body, settings);
    const bodyText = (req as unknown as Record<symbol, Buffer | undefined>)[BODY_TEXT] ?? Buffer.alloc(0);
    delete (req as unknown as Record<symbol, Buffer | undefined>)[BODY_TEXT];
    if (rule.body === 'bulk' && bodyText.length > settings.maxDocumentBytes) {
      const oversized = oversizedDocument(req.body, settings.maxDocumentBytes);
      if (oversized !== null) return refuse(res, 413, 'document_too_large', `${oversized}: ${documentTooLarge(settings.maxDocumentBytes)}`);
    }
    if (rule.writes && shapeMayBeWrong(bodyText, MAX_DOCUMENT_DEPTH, rule.writes === 'bulk' ? 3 : 1)) {
      const shape = documentShapeProblem(req.body, MAX_DOCUMENT_DEPTH);
      if (shape !== null) return refuse(res, 400, 'bad_request', shape);
    }
    if (writeRefusal() || selectorRefusal()) return;
    next();
  });
}

/** Why a non-admin may not make a request of this rule, or null. */
function accessRefusal(rule: RouteRule, identity: Requester, peer: string | undefined): { status: number; error: string; reason: string } | null {
  if (rule.access === 'admin') {
    const reason = rule.reason ?? 'this request needs the server admin';
    return identity.kind === 'anonymous'
      ? { status: 401, error: 'unauthorized', reason }
      : { status: 403, error: 'forbidden', reason };
  }
  if (rule.access === 'anyone' && identity.kind === 'anonymous' && !isLoopback(peer)) {
    return { status: 401, error: 'unauthorized', reason: 'requests without credentials are accepted from this machine only' };
  }
  return null;
}

/**
 * Who sent the request: an admin (checked against the server's config), a user (checked
 * against `_users`), anonymous (no Basic credentials), or null for a wrong password, whatever
 * the name. express-pouchdb checks the credentials again behind the guard, the same way.
 */
async function authenticate(authorization: string | undefined, settings: GuardSettings): Promise<Requester | null> {
  const match = /^\s*basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(authorization ?? '');
  if (!match) return { kind: 'anonymous' };
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return { kind: 'anonymous' };
  const name = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  const admins = settings.admins();
  const stored = Object.prototype.hasOwnProperty.call(admins, name) ? admins[name] : undefined;
  if (stored !== undefined) return verifyAdminPassword(stored, password) ? { kind: 'admin', name } : null;
  return userFromDocument(await settings.userDocument(name), name, password);
}

function answerPreflight(req: GuardRequest, res: ServerResponse): void {
  const requested = headerValue(req.headers['access-control-request-headers']) ?? '';
  const headers = requested
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => CORS_REQUEST_HEADERS.has(h));
  res.setHeader('Access-Control-Allow-Methods', CORS_METHODS);
  if (headers.length > 0) res.setHeader('Access-Control-Allow-Headers', headers.join(', '));
  res.setHeader('Access-Control-Max-Age', '600');
  res.statusCode = 204;
  res.end();
}

function bodyError(res: ServerResponse, err: BodyParserError, kind: RouteRule['body'], settings: GuardSettings): void {
  switch (err.type) {
    case 'entity.too.large':
      return tooLarge(res, kind, settings);
    case 'entity.parse.failed':
      return refuse(res, 400, 'bad_request', 'invalid_json');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return refuse(res, 415, 'bad_content_type', err.message);
    case 'request.aborted':
      res.destroy();
      return;
    default:
      return refuse(res, err.status && err.status >= 400 && err.status < 500 ? err.status : 400, 'bad_request', err.message);
  }
}

/**
 * Read the body to its end and drop it, then answer: a server that answers and closes while
 * the client still sends makes the client's write fail (EPIPE), so it never sees the 413.
 * body-parser does the same with a body it refuses.
 */
function afterBody(req: IncomingMessage, res: ServerResponse, answer: () => void): void {
  if (req.readableEnded) return answer();
  req.once('end', answer);
  req.once('error', () => res.destroy());
  req.resume();
}

function tooLarge(res: ServerResponse, kind: RouteRule['body'], settings: GuardSettings): void {
  if (kind === 'bulk') refuse(res, 413, 'too_large', `the request is larger than ${settings.maxRequestBytes} bytes (embedded.max_request_size)`);
  else refuse(res, 413, 'document_too_large', documentTooLarge(settings.maxDocumentBytes));
}

/** The reason a document over the limit is refused: the limit, and the settings that set it. */
function documentTooLarge(maxBytes: number): string {
  return `the document is larger than ${maxBytes} bytes, the largest this server takes (embedded.max_document_size, which follows worker.max_task_size): keep large data elsewhere and put a reference to it in the task`;
}

function refuseWith(res: ServerResponse, refusal: Refusal): void {
  refuse(res, refusal.status, refusal.error, refusal.reason);
}

function refuse(res: ServerResponse, status: number, error: string, reason: string): void {
  const body = `${JSON.stringify({ error, reason })}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'must-revalidate');
  res.end(body);
}

function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function queryParameter(url: string | undefined, name: string): string | null {
  const queryStart = (url ?? '').indexOf('?');
  return queryStart === -1 ? null : new URLSearchParams(url!.slice(queryStart + 1)).get(name);
}

/** express-pouchdb JSON-parses every query value (`?id="_design/x"` is the string `_design/x`). */
function jsonQueryValue(value: unknown): string | null {
  return typeof value === 'string' ? jsonStringOrSelf(value) : null;
}

function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, '');
}

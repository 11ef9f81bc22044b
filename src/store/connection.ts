/**
 * One connection to the database server: nano configured from `couchdb` settings, and the
 * one function (`request`) through which After performs HTTP, turning every failure into a
 * CouchRequestError that names its cause without a credential.
 */
import { setMaxListeners } from 'node:events';
import nano from 'nano';
import { authenticatedUrl, scrubUrl } from '../config/urls';
import { type AfterConfig } from '../config/types';
import { backoffMs, delay } from '../clock';
import { CouchRequestError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { ClockSkewEstimator, SkewWarnings } from './clock-skew';
import { networkCause, requestError } from './request-errors';
import type { ServerInfo } from './types';
import { WireObserver, type WireRecord } from './wire-observer';

export interface RequestOptions {
  /** @default "GET" */
  method?: string;
  /** Relative to the database ('' for the database itself), or to the server root when `root`. Already URL-encoded. */
  path: string;
  qs?: Record<string, string | number | boolean | unknown[]>;
  body?: unknown;
  /** The body already serialised as JSON (instead of `body`). */
  bodyJson?: string;
  signal?: AbortSignal;
  /** `path` is from the server root, not the database. */
  root?: boolean;
  /** Another database of the same server than the tasks database (the control database). */
  db?: string;
  /** Called when the status line arrives (before the body). */
  onHeaders?(status: number): void;
  /** Called for every chunk of the body as it arrives (heartbeats included). */
  onBytes?(count: number): void;
}

export interface Response<T> {
  status: number;
  body: T;
  /** Names lowercased. */
  headers: Record<string, string>;
}

export interface Connection {
  readonly dbName: string;
  /** The server URL without credentials: the one to print. */
  readonly displayUrl: string;
  /** The database clock, estimated from every response's `Date` header. */
  readonly clock: ClockSkewEstimator;
  request<T = unknown>(options: RequestOptions): Promise<Response<T>>;
  /** Abort every request in flight; later requests fail with E_ABORTED. */
  close(): void;
}

export function openConnection(config: AfterConfig, options: { log?: Logger } = {}): Connection {
  const log = options.log ?? silentLogger();
  const clock = new ClockSkewEstimator();
  const skewWarnings = new SkewWarnings();
  const observer = new WireObserver((sample) => {
    clock.addSample(sample);
    const line = skewWarnings.check(clock.skewMs());
    if (line) log[line.level](line.message);
  });
  const nanoConfig = {
    url: authenticatedUrl(config.couchdb),
    // pouchdb-server gzips its answers when asked (nano asks by default): the `_changes`
    // heartbeat newlines then sit in the compressor and never reach the feed's watchdog, and
    // every answer costs the server CPU. CouchDB does not compress anyway.
    headers: { 'Accept-Encoding': 'identity' },
    // A URL with a path (a proxy prefix) is a server URL here, never "server + database".
    parseUrl: false,
  };
  // One nano for the connection (its cookie jar keeps the AuthSession cookie a `POST /_session`
  // sets: the dashboard's sign-in on CouchDB). Each request gets its own dispatcher, watching its
  // exchange (wire-observer.ts): nano reads `config.agent` as the request leaves, in the same
  // turn as `relax` is called, so setting it just before is the request's own.
  const server = nano(nanoConfig as nano.Configuration);
  const serverConfig = server.config as unknown as { agent?: unknown };
  const relax = (record: WireRecord, options: nano.RequestOptions): Promise<unknown> => {
    serverConfig.agent = observer.dispatcherFor(record);
    try {
      return server.relax(options);
    } finally {
      serverConfig.agent = undefined;
    }
  };
  const dbName = config.couchdb.db;
  const displayUrl = scrubUrl(config.couchdb.url);
  const closing = closingController();

  async function request<T>(opts: RequestOptions): Promise<Response<T>> {
    const method = (opts.method ?? 'GET').toUpperCase();
    const db = opts.db ?? dbName;
    const fullPath = opts.root ? `/${opts.path}` : `/${encodeURIComponent(db)}${opts.path ? `/${opts.path}` : ''}`;
    const link = linkSignals([opts.signal, closing.signal]);
    try {
      return await perform<T>(opts, method, fullPath, link.signal);
    } finally {
      link.release();
    }
  }

  async function perform<T>(opts: RequestOptions, method: string, fullPath: string, signal: AbortSignal): Promise<Response<T>> {
    const failed = (details: { status?: number; error?: string; reason?: string; cause?: unknown }): CouchRequestError =>
      requestError({
        method,
        path: fullPath,
        displayUrl,
        dbName: opts.db ?? dbName,
        status: details.status,
        error: details.error,
        reason: details.reason,
        networkCause: details.cause === undefined ? undefined : networkCause(details.cause),
        aborted: signal.aborted,
      });
    if (signal.aborted) throw failed({});

    const record: WireRecord = { headers: {}, onHeaders: opts.onHeaders, onBytes: opts.onBytes };
    const abortDispatch = (): void => record.abortDispatch?.(new Error('aborted'));
    signal.addEventListener('abort', abortDispatch, { once: true });
    let body: unknown;
    try {
      // Serialised here: nano's own JSON.stringify calls a replacer for every value (to turn
      // functions into text, which no body of After's holds), several times slower for a bulk write.
      const bodyText = opts.bodyJson ?? (opts.body === undefined || opts.body === null ? undefined : JSON.stringify(opts.body));
      body = await relax(record, {
        method,
        ...(opts.root ? {} : { db: opts.db ?? dbName }),
        path: opts.path,
        qs: opts.qs,
        ...(bodyText === undefined ? {} : { body: bodyText, dontStringify: true }),
        signal,
      } as nano.RequestOptions);
    } catch (err) {
      const couch = err as { statusCode?: number; error?: unknown; reason?: unknown; message?: string };
      if (record.status !== undefined && record.status >= 300) {
        throw failed({
          status: record.status,
          error: typeof couch.error === 'string' ? couch.error : undefined,
          reason: typeof couch.reason === 'string' ? couch.reason : couch.message,
        });
      }
      throw failed({ cause: record.failure ?? err });
    } finally {
      signal.removeEventListener('abort', abortDispatch);
    }
    // nano resolves with '' when the body was cut off (abort, dropped socket): not a success.
    if (record.failure || record.status === undefined) throw failed({ cause: record.failure ?? 'the response was cut off' });
    return { status: record.status, body: parseBody(body) as T, headers: record.headers };
  }

  return {
    dbName,
    displayUrl,
    clock,
    request,
    close: () => closing.abort(),
  };
}

/**
 * The controller that ends a connection's or a store's requests when it closes. Every request in
 * flight listens to its signal (linkSignals) until it has its answer: a burst has tens of them
 * at once, which is no leak, so Node's warning past 10 listeners is turned off for this signal.
 */
export function closingController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * One signal that aborts when any of `sources` does. Not AbortSignal.any: in Node 20-22 every
 * signal it makes stays referenced by a long-lived source (nodejs/node#55351), and a worker
 * combines the store's lifetime signal with a new one for each of its requests, for months.
 */
export function linkSignals(sources: ReadonlyArray<AbortSignal | undefined>): { signal: AbortSignal; release(): void } {
  const linked = new AbortController();
  const present = sources.filter((source): source is AbortSignal => source !== undefined);
  const abort = (): void => linked.abort();
  for (const source of present) {
    if (source.aborted) linked.abort();
    else source.addEventListener('abort', abort, { once: true });
  }
  return {
    signal: linked.signal,
    release: () => present.forEach((source) => source.removeEventListener('abort', abort)),
  };
}

/** `_id` as a URL path segment; `_design/x` keeps its slash, as CouchDB expects. */
export function docPath(id: string): string {
  return id.startsWith('_design/') ? `_design/${encodeURIComponent(id.slice('_design/'.length))}` : encodeURIComponent(id);
}

/** pouchdb-server answers some routes as text/plain: parse JSON wherever it is JSON. */
function parseBody(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** What `GET /` and `GET /<db>` tell about the server; `replicas` is the database's n. */
export interface ServerProbe {
  info: ServerInfo;
  replicas: number;
}

interface WelcomeBody {
  couchdb?: string;
  'express-pouchdb'?: string;
  version?: string;
}

/** Which server this is (once: `GET /`), and whether the database is replicated. */
export async function probeServer(conn: Connection, signal?: AbortSignal): Promise<ServerProbe> {
  const welcome = (await conn.request<WelcomeBody>({ path: '', root: true, signal })).body;
  const version = String(welcome.version ?? 'unknown');
  if (welcome['express-pouchdb'] !== undefined) {
    return { info: { kind: 'pouchdb-server', version, clustered: false }, replicas: 1 };
  }
  if (welcome.couchdb === undefined) {
    throw new CouchRequestError('E_DB_UNKNOWN_SERVER', `the server at ${conn.displayUrl} is neither CouchDB nor pouchdb-server (GET / gave no "couchdb" welcome)`);
  }
  let replicas = 1;
  try {
    const db = (await conn.request<{ cluster?: { n?: number } }>({ path: '', signal })).body;
    replicas = Number(db.cluster?.n ?? 1);
  } catch (err) {
    // A database not created yet has no replicas to disagree.
    if (!(err instanceof CouchRequestError && err.code === 'E_DB_MISSING')) throw err;
  }
  return { info: { kind: 'couchdb', version, clustered: replicas > 1 }, replicas };
}

export async function detectServer(conn: Connection): Promise<ServerInfo> {
  return (await probeServer(conn)).info;
}

export interface RetryOptions {
  signal?: AbortSignal;
  /** Give up after this many tries. @default Infinity */
  attempts?: number;
  /**
   * Which failures are tried again. 'transient': no response, 429, 5xx, after a backoff.
   * 'conflict': a 409 (someone else wrote first), at once: each try reads the document again.
   * @default 'transient'
   */
  retryOn?: 'transient' | 'conflict';
  onRetry?(err: CouchRequestError, attempt: number, delayMs: number): void;
}

/**
 * Run `fn` (given the number of this try, from 1) until it succeeds, retrying the failures
 * `retryOn` names; any other error, the last try's error, or an abort ends it with that error.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? Infinity;
  const onConflict = options.retryOn === 'conflict';
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const retryable = err instanceof CouchRequestError && (onConflict ? err.status === 409 : err.transient && err.code !== 'E_ABORTED');
      if (!retryable || attempt >= attempts || options.signal?.aborted) throw err;
      const waitMs = onConflict ? 0 : backoffMs(attempt - 1);
      options.onRetry?.(err, attempt, waitMs);
      if (waitMs > 0) await delay(waitMs, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}

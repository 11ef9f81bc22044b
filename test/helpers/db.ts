/**
 * A database for one integration test file: a fresh `after_test_<random>` database on the
 * CouchDB named by COUCHDB_URL, or else an embedded server of its own on a free port in a temp
 * folder. Both kinds pass the same tests.
 *
 * The embedded server is started from the test's AFTER_HOME, as `after db start` would be: its
 * CLI commands that need admin (`after init`, `after purge`) find the generated admin there,
 * like a user's, and everything else (workers, `after task`, the dashboard, `request`) is
 * anonymous on loopback. On CouchDB, COUCHDB_URL's credentials are used for everything.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { scrubUrl } from '../../src/config/urls';
import { type AfterConfig } from '../../src/config/types';
import { AfterError } from '../../src/errors';
import { withEmbeddedAdmin } from '../../src/embedded/admin-config';
import { readAdminCredentials } from '../../src/embedded/admin-credentials';
import { startEmbedded, stopEmbedded } from '../../src/embedded/server';
import { openConnection, type Connection } from '../../src/store/connection';
import { initDatabase, type InitReport } from '../../src/store/for-operators/init';
import { silentLogger } from '../../src/log';
import { freePort } from './ports';
import { stopPm2Daemon } from './processes';

export interface TestDb {
  kind: 'embedded' | 'couchdb';
  /** Server URL without the database; for COUCHDB_URL it carries the credentials. */
  url: string;
  /** Server URL with admin credentials: the embedded server's generated admin, or COUCHDB_URL. */
  adminUrl: string;
  /** The server URL fit to print. */
  displayUrl: string;
  dbName: string;
  /** The temp folder of this TestDb (holds home/, data/, config.json). */
  root: string;
  /** AFTER_HOME for child processes: `<root>/home`. */
  home: string;
  /** What a child process needs: AFTER_COUCHDB_URL, AFTER_DB, AFTER_HOME, AFTER_CONFIG. */
  env: Record<string, string>;
  /** The configuration a CLI started with `env` would load. */
  config(): AfterConfig;
  /** A plain HTTP request against the database, like curl: `request('POST', '', task)`, `request('GET', id)`. */
  request<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** The same as the server admin (design documents, databases, `_security`). */
  adminRequest<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** `after init` in process, with the admin credentials the CLI would use (`validate`: as `after init --validate`). */
  init(options?: { validate?: boolean }): Promise<InitReport>;
  /** A store connection (src/store/connection) for in-process admin calls. */
  connect(): Connection;
  /** Embedded only: stop the server process (data stays on disk). */
  stop(): Promise<void>;
  /** Embedded only: start it again on the same port and folder. */
  restart(): Promise<void>;
  /** Stop everything this TestDb started and delete its database / temp folder. */
  destroy(): Promise<void>;
}

export interface StartDbOptions {
  /** Run `after init` before returning. @default true */
  init?: boolean;
  /** Merged into the generated config.json (e.g. `{ worker: { heartbeat_ms: 500 } }`). */
  config?: Record<string, unknown>;
  /** A CouchDB server URL (with credentials) to use instead of COUCHDB_URL / the embedded server: one node of a cluster. */
  url?: string;
}

const liveDbs = new Set<TestDb>();

export async function startDb(options: StartDbOptions = {}): Promise<TestDb> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-test-'));
  const dbName = `after_test_${randomBytes(6).toString('hex')}`;
  const external = options.url ?? process.env.COUCHDB_URL;
  try {
    const server = external ? { url: external.replace(/\/+$/, ''), embedded: undefined } : await startTestServer(root);
    const db = await makeTestDb(root, dbName, server.url, server.embedded, options.config ?? {});
    liveDbs.add(db);
    if (options.init !== false) await db.init();
    return db;
  } catch (err) {
    if (!external) await stopEmbedded(path.join(root, 'home')).catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/** For the root `after` hook: destroy what a test file forgot, and name it. */
export async function destroyLeftoverDbs(): Promise<string[]> {
  const left = [...liveDbs];
  await Promise.all(left.map((db) => db.destroy()));
  return left.map((db) => `${db.dbName} on ${db.displayUrl}`);
}

interface EmbeddedPlace {
  home: string;
  dir: string;
  port: number;
}

async function startTestServer(root: string): Promise<{ url: string; embedded: EmbeddedPlace }> {
  // The server's home is the tests' AFTER_HOME (where its admin file is); tests of
  // `after db start|stop` give their commands a home of their own.
  const embedded = { home: path.join(root, 'home'), dir: path.join(root, 'data'), port: 0 };
  for (let attempt = 1; ; attempt++) {
    embedded.port = await freePort();
    try {
      const started = await startEmbedded({ host: '127.0.0.1', ...embedded, background: true });
      return { url: started.url, embedded };
    } catch (err) {
      // Another process may take the free port between the probe and the bind.
      if (!(err instanceof AfterError && err.code === 'E_PORT_TAKEN') || attempt >= 3) throw err;
    }
  }
}

async function makeTestDb(
  root: string,
  dbName: string,
  url: string,
  embedded: EmbeddedPlace | undefined,
  extraConfig: Record<string, unknown>,
): Promise<TestDb> {
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { recursive: true });
  const configFile = path.join(root, 'config.json');
  // A CLI started by a test must never fall back to the default port 5984 a user may run.
  const fileConfig = mergeSections(
    {
      log: { level: 'info', dir: path.join(root, 'logs') },
      embedded: { host: '127.0.0.1', port: await freePort(), dir: path.join(root, 'cli-data') },
    },
    extraConfig,
  );
  fs.writeFileSync(configFile, `${JSON.stringify(fileConfig, null, 2)}\n`);
  const env = { AFTER_COUCHDB_URL: url, AFTER_DB: dbName, AFTER_HOME: home, AFTER_CONFIG: configFile };
  const adminUrl = embedded ? withCredentials(url, readAdminCredentials(embedded.home)) : url;
  const { authorization } = splitCredentials(adminUrl);
  const serverOrigin = splitCredentials(url).origin;
  let destroyed = false;

  const db: TestDb = {
    kind: embedded ? 'embedded' : 'couchdb',
    url,
    adminUrl,
    displayUrl: scrubUrl(url),
    dbName,
    root,
    home,
    env,
    config: () => loadConfig(env, root),
    request: databaseRequest(url, dbName),
    adminRequest: databaseRequest(adminUrl, dbName),
    init: (options = {}) => initDatabase(withEmbeddedAdmin(db.config()), { log: silentLogger(), ...options }),
    connect: () => openConnection(db.config(), { log: silentLogger() }),
    async stop() {
      if (!embedded) throw new Error('stop() needs the embedded server; this test runs against COUCHDB_URL');
      await stopEmbedded(embedded.home);
    },
    async restart() {
      if (!embedded) throw new Error('restart() needs the embedded server; this test runs against COUCHDB_URL');
      await stopEmbedded(embedded.home);
      await startEmbedded({ host: '127.0.0.1', ...embedded, background: true });
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      liveDbs.delete(db);
      await stopPm2Daemon(home);
      if (embedded) {
        await stopEmbedded(embedded.home);
      } else {
        // `after init` also made the control database `<db>_control` and the run figures' `<db>_stats`.
        for (const name of [dbName, `${dbName}_control`, `${dbName}_stats`]) {
          const res = await fetch(`${serverOrigin}/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { ...authorization } });
          await res.arrayBuffer();
          if (res.status !== 200 && res.status !== 202 && res.status !== 404) {
            throw new Error(`cannot delete test database ${name}: HTTP ${res.status}`);
          }
        }
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  return db;
}

/** `{worker: {a}}` + `{worker: {b}}` = `{worker: {a, b}}`: a test overrides single settings. */
function mergeSections(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = merged[key];
    const bothObjects = [current, value].every((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    merged[key] = bothObjects ? { ...(current as object), ...(value as object) } : value;
  }
  return merged;
}

/** `TestDb.request` for database `dbName` on the server at `serverUrl` (credentials in the URL allowed). */
export function databaseRequest(serverUrl: string, dbName: string): TestDb['request'] {
  const { origin, authorization } = splitCredentials(serverUrl);
  const dbUrl = `${origin}/${encodeURIComponent(dbName)}`;
  return async <T>(method: string, docPath: string, body?: unknown) => {
    const target = docPath ? `${dbUrl}/${docPath.replace(/^\/+/, '')}` : dbUrl;
    const res = await fetch(target, {
      method,
      headers: { accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }), ...authorization },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T };
  };
}

/** `url` with `credentials` as its user and password (none: `url` as it is). */
function withCredentials(url: string, credentials: { name: string; password: string } | null): string {
  if (!credentials) return url;
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(credentials.name);
  parsed.password = encodeURIComponent(credentials.password);
  return parsed.toString().replace(/\/+$/, '');
}

/** fetch() refuses URLs with credentials: move them into a Basic Authorization header. */
function splitCredentials(url: string): { origin: string; authorization: Record<string, string> } {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  const origin = parsed.toString().replace(/\/+$/, '');
  if (!user && !password) return { origin, authorization: {} };
  return { origin, authorization: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } };
}

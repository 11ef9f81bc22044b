/**
 * The database server a bench run measures: a fresh embedded pouchdb-server (the default), a
 * real CouchDB (COUCHDB_URL) or a CouchDB cluster (COUCHDB_CLUSTER_URLS, one URL per node).
 * Every workload takes fresh databases from it and deletes them afterwards, of two kinds:
 *
 * - `after`: initialised by `node bin/after init` as a user would (plus BENCH_INIT_ARGS), where
 *   After's own worker runs;
 * - `bare`: a plain `PUT /<db>` with no design document and no index, where the raw figures are
 *   measured: the database's own speed, with the leanest client (`fetch`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readAdminCredentials, type AdminCredentials } from '../src/embedded/admin-credentials';
import { embeddedFiles } from '../src/embedded/server-files';
import { startEmbedded, stopEmbedded } from '../src/embedded/server';
import type { TaskDoc } from '../src/types';
// The same probe the tests use: the bench is dev tooling beside them.
import { freePort } from '../test/helpers/ports';

/** This file runs from dist/bench. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const AFTER_BIN = path.join(REPO_ROOT, 'bin', 'after');

export type ServerKind = 'embedded' | 'couchdb' | 'cluster';

export interface BulkRow {
  id?: string;
  rev?: string;
  ok?: boolean;
  error?: string;
  reason?: string;
}

/** One node's view of a database: what a worker connected to that node is given. */
export interface DbNode {
  /** The node URL without credentials (the one to print). */
  displayUrl: string;
  /** The environment an `after` command on this node runs with. */
  env: Record<string, string>;
  request<T>(method: string, docPath: string, body?: unknown): Promise<T>;
  /** A continuous `_changes` feed of ids and revisions from `since` (changes-clock.ts reads it). */
  changesEndpoint(since: string): { url: string; headers: Record<string, string> };
}

export interface BenchDb {
  name: string;
  /** One entry per node of a cluster; a single server has one. `nodes[0]` is the one `request` uses. */
  nodes: DbNode[];
  /** The environment an `after` command runs with (node 1's). */
  env: Record<string, string>;
  /** The folder of this database's config.json, logs and AFTER_HOME. */
  place: string;
  request<T>(method: string, docPath: string, body?: unknown): Promise<T>;
  /** `after init` on this database, as a user runs it (W3 runs it on a database loaded bare). */
  init(): Promise<void>;
  /** One `_bulk_docs`; throws unless every document was written (a cluster's 202 counts). */
  bulkDocs(docs: readonly object[], node?: number): Promise<BulkRow[]>;
  /** Every task document (design documents left out), read in pages of `_all_docs`. */
  allTasks(): Promise<TaskDoc[]>;
  /** Task count by status, counted from `allTasks()` (no view: the design documents are After's to change). */
  countsByStatus(): Promise<Record<string, number>>;
  destroy(): Promise<void>;
}

export interface NewDbOptions {
  /** `after`: `after init` as a user runs it (the default); `bare`: no design document, no index. */
  init?: 'after' | 'bare';
  /** Merged into the database's config.json (e.g. `{ log: { level: 'debug' } }`). */
  config?: Record<string, unknown>;
}

interface CreateDbOptions extends NewDbOptions {
  /** A pause before the database is deleted (see EMBEDDED_SETTLE_MS). */
  settleBeforeDeleteMs?: number;
  /**
   * The server as its admin, for what needs one (creating, initialising and deleting the
   * databases) when the node URLs carry no credentials: the embedded server is locked, and its
   * workers reach tasks without a password as a user's do.
   */
  adminUrl?: string;
}

export interface BenchServer {
  kind: ServerKind;
  /** "pouchdb-server 4.2.0 (embedded)", "Apache CouchDB 3.4.3", "Apache CouchDB 3.4.3, 3 nodes". */
  description: string;
  /** Node URLs without credentials. */
  displayUrls: string[];
  /** The database server's process, when it runs on this machine and can be found (for its CPU). */
  pid: number | undefined;
  newDb(label: string, options?: NewDbOptions): Promise<BenchDb>;
  stop(): Promise<void>;
}

/** Databases and processes to clean up when the run is interrupted (Ctrl-C). */
const live = { dbs: new Set<BenchDb>(), pids: new Set<number>() };

export function trackPid(pid: number): () => void {
  live.pids.add(pid);
  return () => live.pids.delete(pid);
}

/** On SIGINT/SIGTERM: stop the workers the bench started and delete its databases, then exit. */
export function cleanUpOnInterrupt(server: () => BenchServer | undefined): void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench: ${signal}: stopping the workers and deleting the bench databases\n`);
    for (const pid of live.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    void Promise.allSettled([...live.dbs].map((db) => db.destroy()))
      .then(() => server()?.stop())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/**
 * pouchdb-server 4.2 crashes when a database is deleted while it still answers a longpoll
 * `_changes` request on it (express-pouchdb lib/routes/changes.js:62 reads `results` of a
 * feed the deletion ended: "Cannot read properties of undefined (reading 'length')"). A worker
 * that has just exited may have left one in flight, so the bench waits this long before it
 * deletes a database there.
 */
const EMBEDDED_SETTLE_MS = 2000;

/** A fresh pouchdb-server on a free port in a temp folder. */
export async function startEmbeddedServer(): Promise<BenchServer> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-'));
  const home = path.join(root, 'db-home');
  const port = await freePort();
  const started = await startEmbedded({ host: '127.0.0.1', port, dir: path.join(root, 'data'), home, background: true });
  const admin = readAdminCredentials(home);
  const adminUrl = admin ? withCredentials(started.url, admin) : started.url;
  const version = await serverVersion(httpEndpoint(started.url));
  /** The server's own log, kept when it exited during the run (it is in the temp folder). */
  const logOfDeadServer = (): string | undefined => {
    if (processAlive(started.pid)) return undefined;
    const kept = path.join(os.tmpdir(), `after-bench-db-${started.pid}.log`);
    fs.copyFileSync(embeddedFiles(home).log, kept);
    return kept;
  };
  return {
    kind: 'embedded',
    description: `pouchdb-server ${version} (embedded)`,
    displayUrls: [started.url],
    pid: started.pid,
    async newDb(label, options) {
      const log = logOfDeadServer();
      if (log) throw new Error(`the embedded server (pid ${started.pid}) has exited; its log: ${log}`);
      return createDb(root, [started.url], label, { ...options, settleBeforeDeleteMs: EMBEDDED_SETTLE_MS, adminUrl });
    },
    async stop() {
      const log = logOfDeadServer();
      if (log) process.stderr.write(`bench: the embedded server (pid ${started.pid}) exited during the run; its log is kept in ${log}\n`);
      await stopEmbedded(home);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A CouchDB the user runs (one URL) or a cluster of it (one URL per node, the first used for setup). */
export async function couchdbServer(urls: readonly string[]): Promise<BenchServer> {
  const nodeUrls = urls.map((url) => url.replace(/\/+$/, ''));
  const endpoints = nodeUrls.map(httpEndpoint);
  const version = await serverVersion(endpoints[0]!);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-'));
  const cluster = nodeUrls.length > 1;
  return {
    kind: cluster ? 'cluster' : 'couchdb',
    description: `Apache CouchDB ${version}${cluster ? `, ${nodeUrls.length} nodes` : ''}`,
    displayUrls: endpoints.map((endpoint) => endpoint.base),
    pid: cluster ? undefined : listeningPid(endpoints[0]!.base),
    newDb: (label, options) => createDb(root, nodeUrls, label, options),
    async stop() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Endpoint {
  /** The URL without credentials. */
  base: string;
  headers: Record<string, string>;
}

/** `fetch` refuses URLs with credentials: they become a Basic authorization header. */
function httpEndpoint(url: string): Endpoint {
  const parsed = new URL(url);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (parsed.username || parsed.password) {
    const user = decodeURIComponent(parsed.username);
    const password = decodeURIComponent(parsed.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  return { base: parsed.toString().replace(/\/+$/, ''), headers };
}

async function serverVersion(endpoint: Endpoint): Promise<string> {
  let res: globalThis.Response;
  try {
    res = await fetch(`${endpoint.base}/`, { headers: endpoint.headers });
  } catch (err) {
    throw new Error(`cannot reach ${endpoint.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  const body = (await res.json()) as { version?: string };
  if (!res.ok) throw new Error(`${endpoint.base}: HTTP ${res.status}`);
  return String(body.version ?? 'unknown');
}

/** The pid listening on a loopback URL's port (`ss -ltnp`), so W4 can read the database's CPU. */
function listeningPid(base: string): number | undefined {
  const url = new URL(base);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return undefined;
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${url.port || 80}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = /pid=(\d+)/.exec(out);
    return pid ? Number(pid[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads tried again after a failure that is not an answer (a reset connection on a loaded machine). */
const READ_TRIES = 3;

function nodeRequest(endpoint: Endpoint, name: string) {
  const dbUrl = `${endpoint.base}/${name}`;
  return async <T>(method: string, docPath: string, body?: unknown): Promise<T> => {
    const what = `${method} ${name}/${docPath.split('?')[0]}`;
    let res: globalThis.Response | undefined;
    let text = '';
    for (let attempt = 1; !res; attempt++) {
      try {
        res = await fetch(docPath ? `${dbUrl}/${docPath}` : dbUrl, {
          method,
          headers: { ...endpoint.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        text = await res.text();
      } catch (err) {
        // undici says "fetch failed"; what failed is in its cause (ECONNRESET, ECONNREFUSED...).
        const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
        const why = cause?.code ?? cause?.message ?? (err as Error).message;
        if (method !== 'GET' || attempt >= READ_TRIES) throw new Error(`${what}: ${why}`);
        res = undefined;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  };
}

async function createDb(root: string, nodeUrls: readonly string[], label: string, options: CreateDbOptions = {}): Promise<BenchDb> {
  const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
  const place = path.join(root, name);
  fs.mkdirSync(place, { recursive: true });
  const configFile = path.join(place, 'config.json');
  // The embedded section only keeps a stray `after db start` off the default port 5984.
  const { log, ...otherConfig } = (options.config ?? {}) as { log?: Record<string, unknown> };
  // The credentials go in config.json, as an operator may put them: a worker whose environment
  // carried them would run as the child of a launcher (src/cli/credential-handover.ts), and the
  // bench measures the process it starts.
  const credentials = new URL(nodeUrls[0]!);
  const fileConfig = {
    ...(credentials.username ? { couchdb: { username: decodeURIComponent(credentials.username), password: decodeURIComponent(credentials.password) } } : {}),
    log: { level: 'info', dir: path.join(place, 'logs'), ...log },
    embedded: { host: '127.0.0.1', port: await freePort(), dir: path.join(place, 'cli-data') },
    ...otherConfig,
  };
  fs.writeFileSync(configFile, `${JSON.stringify(fileConfig, null, 2)}\n`, { mode: 0o600 });
  const envOf = (url: string): Record<string, string> => ({ AFTER_COUCHDB_URL: withoutCredentials(url), AFTER_DB: name, AFTER_HOME: path.join(place, 'home'), AFTER_CONFIG: configFile });
  const nodes: DbNode[] = nodeUrls.map((url) => {
    const endpoint = httpEndpoint(url);
    return {
      displayUrl: endpoint.base,
      env: envOf(url),
      request: nodeRequest(endpoint, name),
      changesEndpoint: (since: string) => ({
        url: `${endpoint.base}/${name}/_changes?feed=continuous&heartbeat=5000&since=${encodeURIComponent(since)}`,
        headers: endpoint.headers,
      }),
    };
  });
  const request = nodes[0]!.request;
  const adminUrl = options.adminUrl ?? nodeUrls[0]!;
  const adminRequest = nodeRequest(httpEndpoint(adminUrl), name);
  const adminEnv = { ...nodes[0]!.env, AFTER_COUCHDB_URL: adminUrl };

  if (options.init === 'bare') await adminRequest('PUT', '');
  else await afterInit(adminEnv);

  const db: BenchDb = {
    name,
    nodes,
    env: nodes[0]!.env,
    place,
    request,
    init: () => afterInit(adminEnv),
    async bulkDocs(docs, node = 0) {
      const rows = await nodes[node]!.request<BulkRow[]>('POST', '_bulk_docs', { docs });
      const failed = rows.filter((row) => row.error !== undefined);
      if (failed.length > 0) throw new Error(`_bulk_docs: ${failed.length} of ${docs.length} not written (first: ${failed[0]!.id} ${failed[0]!.error})`);
      return rows;
    },
    async allTasks() {
      const tasks: TaskDoc[] = [];
      const pageSize = 5000;
      let startKey: string | undefined;
      for (;;) {
        const qs = new URLSearchParams({ include_docs: 'true', limit: String(pageSize + 1) });
        if (startKey !== undefined) qs.set('startkey', JSON.stringify(startKey));
        const page = await request<{ rows: Array<{ id: string; doc: TaskDoc }> }>('GET', `_all_docs?${qs}`);
        const rows = page.rows.slice(0, pageSize);
        for (const row of rows) if (!row.id.startsWith('_design/') && row.doc) tasks.push(row.doc);
        if (page.rows.length <= pageSize) return tasks;
        startKey = page.rows[pageSize]!.id;
      }
    },
    async countsByStatus() {
      const counts: Record<string, number> = {};
      for (const task of await db.allTasks()) counts[String(task.status)] = (counts[String(task.status)] ?? 0) + 1;
      return counts;
    },
    async destroy() {
      live.dbs.delete(db);
      if (options.settleBeforeDeleteMs) await new Promise((resolve) => setTimeout(resolve, options.settleBeforeDeleteMs));
      // After keeps side databases named after the tasks database (`<db>_control` for the
      // instances' heartbeats): they go too.
      const endpoint = httpEndpoint(adminUrl);
      try {
        const res = await fetch(`${endpoint.base}/_all_dbs`, { headers: endpoint.headers });
        const all = (await res.json()) as string[];
        const ours = all.filter((other) => other === name || other.startsWith(`${name}_`));
        for (const other of ours) await (await fetch(`${endpoint.base}/${encodeURIComponent(other)}`, { method: 'DELETE', headers: endpoint.headers })).arrayBuffer();
      } catch {
        // The server stopped: nothing left to delete.
      }
      const keep = process.env.BENCH_KEEP_LOGS;
      const logs = path.join(place, 'logs');
      if (keep && fs.existsSync(logs)) fs.cpSync(logs, path.join(keep, name), { recursive: true });
      fs.rmSync(place, { recursive: true, force: true });
    },
  };
  live.dbs.add(db);
  return db;
}

/** `node bin/after init [BENCH_INIT_ARGS]`, as a user initialises a database. */
async function afterInit(env: Record<string, string>): Promise<void> {
  const extra = (process.env.BENCH_INIT_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [AFTER_BIN, 'init', ...extra], {
    cwd: REPO_ROOT,
    env: { ...withoutAfterVariables(process.env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`after init ${extra.join(' ')} exited with ${code}: ${output.trim().split('\n').slice(-3).join(' / ')}`);
}

/** The bench's own AFTER_* variables must not leak into the `after` processes it starts. */
export function withoutAfterVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('AFTER_') && key !== 'NODE_OPTIONS'));
}

/** `url` with the admin's name and password in it. */
function withCredentials(url: string, admin: AdminCredentials): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(admin.name);
  parsed.password = encodeURIComponent(admin.password);
  return parsed.toString().replace(/\/$/, '');
}

/** `url` with no name or password in it. */
function withoutCredentials(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString().replace(/\/$/, '');
}

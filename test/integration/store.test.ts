/**
 * The TaskStore against a real server: an embedded server (express-pouchdb, launcher.js) child
 * of this test (killed, restarted and frozen with SIGSTOP at will), and, when COUCHDB_URL is set,
 * Apache CouchDB too (reached through a proxy of this test, which plays the outages a shared
 * server cannot). The store connects without credentials, as a worker does; the test installs
 * the indexes as the server admin.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { DEFAULTS, parseConfig, type AfterConfig } from '../../src/config';
import { hashAdminPassword } from '../../src/embedded/admin-credentials';
import type { LauncherSettings } from '../../src/embedded/server-settings';
import { initDatabase, REVS_LIMIT } from '../../src/store/design';
import { createLogger, silentLogger, type Logger } from '../../src/log';
import { createStore } from '../../src/store/couch-store';
import type { ChangeBatch, Feed, TaskStore } from '../../src/store/types';
import type { TaskDoc } from '../../src/types';
import { freePort } from '../helpers/ports';
import { taskStoreContract } from '../helpers/store-contract';
import { waitFor } from '../helpers/wait';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const LAUNCHER = path.join(REPO_ROOT, 'dist', 'src', 'embedded', 'launcher.js');
const ADMIN = { name: 'store-test', password: randomBytes(16).toString('hex') };
const HEARTBEAT_MS = 300;

/** A server the suite runs against, and the outages it can stage. */
interface Target {
  kind: 'pouchdb-server' | 'couchdb';
  /** What the store connects to (may carry credentials). */
  storeUrl: string;
  /** The server as its admin: what `after init` needs. */
  adminUrl: string;
  /** The same database through `proxy`, which counts requests. */
  countedUrl: string;
  dbName: string;
  /** Counts the requests that pass through it. */
  proxy: TestProxy;
  /** The database stops answering at all (connections refused), then comes back. */
  goDown(): Promise<void>;
  comeBack(): Promise<void>;
  /** The database accepts connections but sends no byte, then resumes. */
  freeze(): void;
  thaw(): void;
  /** A plain HTTP request to the database, like curl. */
  raw<T = any>(method: string, docPath: string, body?: unknown): Promise<{ status: number; body: T }>;
  destroy(): Promise<void>;
}

describe('store (pouchdb-server)', function () {
  storeSuite(() => startPouchTarget());
});

(process.env.COUCHDB_URL ? describe : describe.skip)('store (Apache CouchDB at COUCHDB_URL)', function () {
  storeSuite(() => startCouchTarget(process.env.COUCHDB_URL!));
});

function storeSuite(startTarget: () => Promise<Target>): void {
  let target: Target;
  let store: TaskStore | undefined;
  const feeds: Feed[] = [];

  before(async () => {
    target = await startTarget();
    await initDatabase(configFor(target.adminUrl, target.dbName), { log: silentLogger() });
  });
  after(async () => {
    await target?.destroy();
  });
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((feed) => feed.stop()));
    await store?.close();
    store = undefined;
  });

  async function openStore(options: { url?: string; retry?: 'forever' | 'fail-fast'; log?: Logger } = {}): Promise<TaskStore> {
    store = await createStore(configFor(options.url ?? target.storeUrl, target.dbName), {
      retry: options.retry ?? 'forever',
      log: options.log,
    });
    return store;
  }

  function follow(s: TaskStore, worker: string, since: string): { batches: ChangeBatch[]; reconnects: number[]; seen(): TaskDoc[] } {
    const batches: ChangeBatch[] = [];
    const reconnects: number[] = [];
    const feed = s.follow({
      worker,
      since,
      heartbeatMs: HEARTBEAT_MS,
      onBatch: (batch) => void batches.push(batch),
      onReconnect: () => reconnects.push(Date.now()),
    });
    feeds.push(feed);
    return { batches, reconnects, seen: () => batches.flatMap((b) => b.docs) };
  }

  describe('the TaskStore contract', () => {
    taskStoreContract(() => openStore());
  });

  it('tells which server it talks to', async () => {
    const s = await openStore();
    expect(s.server.kind).to.equal(target.kind);
    expect(s.server.version).to.match(/^\d+\.\d+/);
    expect(s.server.clustered).to.equal(false);
  });

  it('estimates the database clock (same machine: under a second apart)', async () => {
    const s = await openStore();
    await s.updateSeq();
    expect(Math.abs(s.clockSkewMs())).to.be.below(1000);
    expect(Math.abs(s.dbNow() - Date.now())).to.be.below(1000);
  });

  it('sends 100 writes of one tick as one _bulk_docs and gives each its new _rev', async () => {
    const s = await openStore({ url: target.countedUrl });
    const before = target.proxy.count('POST', '/_bulk_docs');
    const ids = Array.from({ length: 100 }, (_, i) => `batch-${i}-${randomBytes(3).toString('hex')}`);
    const results = await Promise.all(ids.map((id) => s.write({ _id: id, worker: 'w', status: 'waiting', date: '2030-01-01' })));
    expect(target.proxy.count('POST', '/_bulk_docs') - before).to.equal(1);
    for (const [i, result] of results.entries()) {
      expect(result.ok, ids[i]).to.equal(true);
      if (!result.ok) continue;
      const stored = await s.get(ids[i]);
      expect(stored?._rev).to.equal(result.doc._rev);
    }
  });

  it('keeps feeding across a database restart: nothing written before or after is lost', async function () {
    const s = await openStore();
    const worker = `restart-${randomBytes(3).toString('hex')}`;
    const feed = follow(s, worker, await s.updateSeq());
    const write = (id: string) => s.write({ _id: `${worker}-${id}`, worker, status: 'waiting' });
    const has = (id: string) => feed.seen().some((doc) => doc._id === `${worker}-${id}`);

    await write('before');
    await waitFor(() => Promise.resolve(has('before')), { timeoutMs: 10_000, what: 'the change before the restart' });
    await target.goDown();
    await target.comeBack();
    await Promise.all([write('after-1'), write('after-2')]);
    await waitFor(() => Promise.resolve(has('after-1') && has('after-2')), { timeoutMs: 20_000, what: 'the changes after the restart' });
    expect(feed.reconnects.length).to.be.at.least(1);
  });

  it('reconnects when the database stops sending even heartbeats', async function () {
    const lines: string[] = [];
    const s = await openStore({ log: capturingLogger(lines) });
    const worker = `frozen-${randomBytes(3).toString('hex')}`;
    const feed = follow(s, worker, await s.updateSeq());
    target.freeze();
    try {
      await waitFor(() => Promise.resolve(lines.some((line) => /no byte/.test(line))), { timeoutMs: 3 * HEARTBEAT_MS + 2000, what: 'the watchdog' });
    } finally {
      target.thaw();
    }
    await s.write({ _id: `${worker}-x`, worker, status: 'waiting' });
    await waitFor(() => Promise.resolve(feed.seen().some((doc) => doc._id === `${worker}-x`)), { timeoutMs: 20_000, what: 'the change after the thaw' });
    expect(feed.reconnects.length).to.be.at.least(1);
  });

  it('holds a write through an outage and completes it when the database is back', async () => {
    const s = await openStore();
    const id = `outage-${randomBytes(3).toString('hex')}`;
    await target.goDown();
    let settled = false;
    const pending = s.write({ _id: id, worker: 'w', status: 'waiting' }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(settled, 'the write must wait for the database').to.equal(false);
    await target.comeBack();
    const result = await pending;
    expect(result.ok).to.equal(true);
    expect((await target.raw('GET', id)).status).to.equal(200);
  });

  it('ends a write still waiting for the database when the store closes', async () => {
    const s = await openStore();
    await target.goDown();
    try {
      const pending = s.write({ _id: `closed-${randomBytes(3).toString('hex')}`, worker: 'w' }).then(
        () => expect.fail('the database is down'),
        (e: { code?: string }) => e.code,
      );
      await new Promise((resolve) => setImmediate(resolve));
      await s.close();
      expect(await pending).to.equal('E_STORE_CLOSED');
    } finally {
      await target.comeBack();
    }
  });

  it('fails fast with a one-line error when asked to, naming the cause', async () => {
    const port = await freePort();
    const err = await openStore({ url: `http://someone:s3cr3t-pw@127.0.0.1:${port}`, retry: 'fail-fast' }).then(
      () => expect.fail('no server listens there'),
      (e: { code?: string; message: string }) => e,
    );
    expect(err.code).to.equal('E_DB_UNREACHABLE');
    expect(err.message).to.include(`127.0.0.1:${port}`).and.include('ECONNREFUSED');
    expect(err.message).not.to.include('s3cr3t-pw');
  });

  it('never shows the password in an error', async () => {
    const wrong = new URL(target.storeUrl);
    wrong.username = 'someone';
    wrong.password = 's3cr3t-pw';
    const lines: string[] = [];
    const err = await openStore({ url: wrong.toString(), retry: 'fail-fast', log: capturingLogger(lines) }).then(
      () => expect.fail('the server must refuse these credentials'),
      (e: Error & { code?: string }) => e,
    );
    expect(err.code).to.equal('E_DB_AUTH');
    for (const text of [err.message, String(err.stack), ...lines]) expect(text).not.to.include('s3cr3t-pw');

    // with the right credentials, an error names the database but not the password
    const realPassword = new URL(target.storeUrl).password;
    const missing = await createStore(configFor(target.storeUrl, `after_test_missing_${randomBytes(3).toString('hex')}`), { retry: 'fail-fast' });
    try {
      const e = await missing.updateSeq().then(() => expect.fail('the database does not exist'), (x: { code?: string; message: string }) => x);
      expect(e.code).to.equal('E_DB_MISSING');
      if (realPassword) expect(e.message).not.to.include(realPassword);
    } finally {
      await missing.close();
    }
  });
}

function configFor(url: string, db: string): AfterConfig {
  return parseConfig({ couchdb: { url, db } }, { file: '(store test)', base: os.tmpdir() });
}

/** A logger whose lines (after the credential scrubbing every logger does) land in `lines`. */
function capturingLogger(lines: string[]): Logger {
  const logger = createLogger({ level: 'debug', console: false });
  const sink = new Writable({
    objectMode: true,
    write(info: { message: unknown }, _encoding, done) {
      lines.push(String(info.message));
      done();
    },
  });
  logger.add(new winston.transports.Stream({ stream: sink }));
  return logger;
}

// ---------------------------------------------------------------------------------------
// Targets

async function startPouchTarget(): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-store-test-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dbName = `after_test_${randomBytes(6).toString('hex')}`;
  let child: ChildProcess | undefined = await startPouchdbServer(dir, port);
  const proxy = await TestProxy.start(url);
  const raw = rawClient(`http://${ADMIN.name}:${ADMIN.password}@127.0.0.1:${port}`, dbName);
  const stopChild = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGCONT');
    running.kill('SIGKILL');
    await exited;
  };
  return {
    kind: 'pouchdb-server',
    storeUrl: url,
    adminUrl: `http://${ADMIN.name}:${ADMIN.password}@127.0.0.1:${port}`,
    countedUrl: proxy.url,
    dbName,
    proxy,
    raw,
    goDown: stopChild,
    async comeBack() {
      child = await startPouchdbServer(dir, port);
    },
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    async destroy() {
      await proxy.close();
      await stopChild();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startPouchdbServer(dir: string, port: number): Promise<ChildProcess> {
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    const config = { admins: { [ADMIN.name]: hashAdminPassword(ADMIN.password) }, log: { file: path.join(dir, 'log.txt'), level: 'warning' } };
    fs.writeFileSync(configFile, `${JSON.stringify(config)}\n`);
  }
  const settings: LauncherSettings = {
    host: '127.0.0.1',
    port,
    dir,
    configFile,
    logFile: path.join(dir, 'log.txt'),
    allowedHosts: [],
    corsOrigins: [],
    maxDocumentBytes: DEFAULTS.embedded.max_document_size,
    maxRequestBytes: DEFAULTS.embedded.max_request_size,
    compactIntervalMs: 0,
    revsLimit: REVS_LIMIT,
  };
  const child = spawn(process.execPath, [LAUNCHER, JSON.stringify(settings)], { cwd: dir, stdio: 'ignore' });
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the embedded server exited with ${child.exitCode}`);
        return (await fetch(`http://127.0.0.1:${port}/`)).ok;
      },
      { timeoutMs: 20_000, what: `the embedded server on port ${port}` },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

async function startCouchTarget(couchUrl: string): Promise<Target> {
  const dbName = `after_test_${randomBytes(6).toString('hex')}`;
  const raw = rawClient(couchUrl, dbName);
  const proxy = await TestProxy.start(couchUrl);
  // The store reaches the shared CouchDB through the proxy, which stages the outages.
  const storeUrl = new URL(couchUrl);
  const proxied = new URL(proxy.url);
  storeUrl.host = proxied.host;
  return {
    kind: 'couchdb',
    storeUrl: storeUrl.toString().replace(/\/$/, ''),
    adminUrl: couchUrl.replace(/\/$/, ''),
    countedUrl: storeUrl.toString().replace(/\/$/, ''),
    dbName,
    proxy,
    raw,
    goDown: () => proxy.goDown(),
    comeBack: () => proxy.comeBack(),
    freeze: () => proxy.freeze(),
    thaw: () => proxy.thaw(),
    async destroy() {
      await proxy.close();
      await raw('DELETE', '');
      await raw('DELETE', `../${dbName}_control`);
    },
  };
}

/** fetch() refuses URLs with credentials: they go into a Basic Authorization header. */
function rawClient(serverUrl: string, dbName: string): Target['raw'] {
  const parsed = new URL(serverUrl);
  const auth: Record<string, string> = parsed.username
    ? { authorization: `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}` }
    : {};
  parsed.username = '';
  parsed.password = '';
  const dbUrl = `${parsed.origin}/${dbName}`;
  return async (method, docPath, body) => {
    const res = await fetch(docPath ? `${dbUrl}/${docPath}` : dbUrl, {
      method,
      headers: { accept: 'application/json', 'content-type': 'application/json', ...auth },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

/**
 * An HTTP proxy in front of the database that counts requests and can play an outage: refuse
 * every connection (goDown), or accept and forward nothing (freeze), as a hung network does.
 */
class TestProxy {
  private readonly requests: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly upstreams = new Set<http.ClientRequest>();
  private readonly heldWhileFrozen: Array<() => void> = [];
  private frozen = false;
  private server: http.Server;

  private constructor(private readonly upstream: URL, private readonly port: number) {
    this.server = this.createServer();
  }

  static async start(upstreamUrl: string): Promise<TestProxy> {
    const proxy = new TestProxy(new URL(upstreamUrl), await freePort());
    await proxy.listen();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** How many `method` requests had a path containing `pathPart`. */
  count(method: string, pathPart: string): number {
    return this.requests.filter((r) => r.startsWith(`${method} `) && r.includes(pathPart)).length;
  }

  async goDown(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const upstream of this.upstreams) upstream.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  async comeBack(): Promise<void> {
    this.server = this.createServer();
    await this.listen();
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const release of this.heldWhileFrozen.splice(0)) release();
  }

  async close(): Promise<void> {
    this.thaw();
    await this.goDown();
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => this.forward(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    const upstream = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: this.upstream.host } },
      (answer) => {
        const send = (write: () => void): void => (this.frozen ? void this.heldWhileFrozen.push(write) : write());
        send(() => res.writeHead(answer.statusCode ?? 502, answer.headers));
        answer.on('data', (chunk: Buffer) => send(() => res.write(chunk)));
        answer.on('end', () => send(() => res.end()));
        answer.on('error', () => res.destroy());
      },
    );
    this.upstreams.add(upstream);
    upstream.on('close', () => this.upstreams.delete(upstream));
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    const start = (): void => void req.pipe(upstream);
    if (this.frozen) this.heldWhileFrozen.push(start);
    else start();
  }
}

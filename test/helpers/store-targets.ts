/**
 * The servers the TaskStore suite (test/integration/store.test.ts) runs against, and the
 * outages each can stage: an embedded server (express-pouchdb, launcher.js) child of the test,
 * killed, restarted and frozen with SIGSTOP at will; or Apache CouchDB at a URL, reached
 * through a TestProxy, which plays the outages a shared server cannot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULTS } from '../../src/config/defaults';
import { hashAdminPassword } from '../../src/embedded/admin-credentials';
import type { LauncherSettings } from '../../src/embedded/server-settings';
import { REVS_LIMIT } from '../../src/store/schema';
import { REPO_ROOT } from './cli';
import { databaseRequest } from './db';
import { freePort } from './ports';
import { TestProxy } from './proxy';
import { waitFor } from './wait';

const LAUNCHER = path.join(REPO_ROOT, 'dist', 'src', 'embedded', 'launcher.js');
const ADMIN = { name: 'store-test', password: randomBytes(16).toString('hex') };

/** A server the suite runs against, and the outages it can stage. */
export interface StoreTarget {
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

export async function startPouchTarget(): Promise<StoreTarget> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-store-test-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dbName = `after_test_${randomBytes(6).toString('hex')}`;
  let child: ChildProcess | undefined = await startPouchdbServer(dir, port);
  const proxy = await TestProxy.start(url);
  const raw = databaseRequest(`http://${ADMIN.name}:${ADMIN.password}@127.0.0.1:${port}`, dbName);
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
    warmIntervalMs: 0,
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

export async function startCouchTarget(couchUrl: string): Promise<StoreTarget> {
  const dbName = `after_test_${randomBytes(6).toString('hex')}`;
  const raw = databaseRequest(couchUrl, dbName);
  const proxy = await TestProxy.start(couchUrl);
  // The store reaches the shared CouchDB through the proxy, which stages the outages.
  const storeUrl = proxy.via(couchUrl);
  return {
    kind: 'couchdb',
    storeUrl,
    adminUrl: couchUrl.replace(/\/$/, ''),
    countedUrl: storeUrl,
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

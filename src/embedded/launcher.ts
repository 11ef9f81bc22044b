/**
 * The embedded server's process (`node launcher.js <settings JSON>`, started by server.ts):
 * express-pouchdb over PouchDB's leveldb adapter, assembled as pouchdb-server 4.2's
 * lib/index.js does (same plugins, same `<dir>/<database>` LevelDB folders and config file),
 * so data written by pouchdb-server keeps working. What differs:
 *
 * - no CORS middleware (pouchdb-server's allows any origin, with credentials); the guard
 *   (guard.ts) sits in front and answers CORS for `embedded.cors_origins` only;
 * - express-pouchdb parts a scheduler does not need and that widen what a request can reach are
 *   left out: Fauxton (`/_utils`), design-document rewrites, virtual hosts, the `/_node/...`
 *   rewrite and CouchDB's test authentication handler;
 * - revision trees keep `revs_limit` revisions (20, what `after init` sets on CouchDB; PouchDB's
 *   default is 1000): with 1000, each write of a task rewritten every second re-serialises a
 *   tree that has grown to 1000 entries, 15 times slower here than with 20;
 * - `validate_doc_update` runs as pouchdb-validation runs it, but the design documents are read
 *   once per database, not once per document written (validation.ts);
 * - every database is compacted periodically (compactor.ts);
 * - the dashboard's views are kept up to date in the background while someone reads them, and
 *   the task counts always (index-warmer.ts);
 * - files are created private to the user (umask 077).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { startCompactor, type CompactableDb } from './compactor';
import type { SecurityObject } from './database-access';
import { createGuard } from './guard';
import { READ_RECENTLY_MS, startIndexWarmer, type WarmableDb } from './index-warmer';
import { installValidation } from './validation';
import type { LauncherSettings } from './server-settings';

/** `validation` is replaced by validation.ts (the same checks, without a read of every design document per document written). */
const EXCLUDED_PARTS = ['routes/fauxton', 'routes/rewrite', 'routes/cluster-rewrite', 'routes/vhosts', 'routes/special-test-auth', 'validation'];
/** How long a stop may wait for the databases to close before exiting anyway. */
const CLOSE_TIMEOUT_MS = 5000;
/** express-pouchdb's authentication database (couch_httpd_auth.authentication_db). */
const USERS_DB = '_users';
/** Where pouchdb-security keeps a database's `_security`. */
const SECURITY_DOC_ID = '_local/_security';

/** A read of a view of After's dashboard design documents: `/<db>/_design/after-lists/_view/...`, `after-runs` the same. */
const AFTER_VIEW_READ = /^\/([^/]+)\/_design\/after-(?:lists|runs)\/_view\//;

/** The reads the guard makes of a database, without a user (pouchdb-security: the server's own). */
interface StoredDocuments {
  get(id: string): Promise<Record<string, unknown>>;
}

interface LevelDown {
  compactRange(start: Buffer, end: Buffer, callback: (err?: Error) => void): void;
}
type LevelDownFactory = ((location: string) => LevelDown) & { destroy(location: string, callback: (err?: Error) => void): void };

interface PouchConstructor {
  plugin(plugin: unknown): PouchConstructor;
  defaults(options: Record<string, unknown>): PouchConstructor;
  allDbs(): Promise<string[]>;
}

interface ExpressPouchApp {
  (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void): void;
  setPouchDB(pouch: PouchConstructor): Promise<void>;
  couchConfig: { getSection(section: string): Record<string, string> };
  dbWrapper: { registerWrapper(wrapper: (name: string, db: unknown, next: () => void) => void): void };
}

interface ExpressApp {
  (req: http.IncomingMessage, res: http.ServerResponse): void;
  use(handler: unknown): void;
  disable(setting: string): void;
}

type Level = 'debug' | 'info' | 'warning' | 'error';

/** Lines appended to the server's log (db.log), in express-pouchdb's own line format. */
function fileLogger(file: string): (level: Level, message: string) => void {
  return (level, message) => {
    if (level === 'debug') return;
    try {
      fs.appendFileSync(file, `[${new Date().toUTCString()}] [${level}] [after] ${message}\n`);
    } catch {
      process.stderr.write(`[${level}] ${message}\n`);
    }
  };
}

function main(settings: LauncherSettings): void {
  process.umask(0o077);
  const log = fileLogger(settings.logFile);
  const dir = path.resolve(settings.dir);
  fs.mkdirSync(dir, { recursive: true });

  const express = require('express') as () => ExpressApp;
  const leveldown = require('leveldown') as LevelDownFactory;
  const PouchDB = (require('pouchdb-core') as PouchConstructor)
    .plugin(require('pouchdb-adapter-http'))
    .plugin(require('pouchdb-replication'))
    .plugin(require('pouchdb-mapreduce'))
    .plugin(require('pouchdb-adapter-leveldb'));
  const expressPouchDB = require('express-pouchdb') as (options: Record<string, unknown>) => ExpressPouchApp;
  const { getOrCreateDB } = require('express-pouchdb/lib/create-or-delete-dbs') as {
    getOrCreateDB(pouch: PouchConstructor, name: string): Promise<CompactableDb & StoredDocuments>;
  };
  const cleanFilename = require('express-pouchdb/lib/clean-filename') as (name: string) => string;

  const pouchApp = expressPouchDB({ configPath: settings.configFile, overrideMode: { exclude: EXCLUDED_PARTS } });
  // Registered last, where express-pouchdb's own `validation` part registers its wrapper.
  pouchApp.dbWrapper.registerWrapper((_name, db, next) => {
    installValidation(db);
    next();
  });
  // The leveldb adapter takes its LevelDOWN from the `db` option: this one also remembers each
  // store by location, so the compactor can reach LevelDB's own compaction.
  const stores = new Map<string, LevelDown>();
  const trackedLeveldown: LevelDownFactory = Object.assign(
    (location: string) => {
      const store = leveldown(location);
      stores.set(location, store);
      return store;
    },
    {
      destroy(location: string, callback: (err?: Error) => void) {
        stores.delete(location);
        leveldown.destroy(location, callback);
      },
    },
  );
  const prefix = dir + path.sep;
  const pouch = PouchDB.defaults({ prefix, db: trackedLeveldown, revs_limit: settings.revsLimit });
  void pouchApp.setPouchDB(pouch);

  const app = express();
  app.disable('x-powered-by');
  app.use(
    createGuard({
      port: settings.port,
      bindHost: settings.host,
      allowedHosts: settings.allowedHosts,
      corsOrigins: settings.corsOrigins,
      maxDocumentBytes: settings.maxDocumentBytes,
      maxRequestBytes: settings.maxRequestBytes,
      admins: () => pouchApp.couchConfig.getSection('admins'),
      userDocument: async (name) => {
        const users = await getOrCreateDB(pouch, USERS_DB);
        return users.get(`org.couchdb.user:${name}`).catch(() => null);
      },
      securityOf: async (name) => {
        // The name as express-pouchdb resolves it; never created here (that would be a PUT).
        const dbName = cleanFilename(name);
        if (!(await pouch.allDbs()).includes(dbName)) return null;
        const db = await getOrCreateDB(pouch, dbName);
        // Read without a user: pouchdb-security takes that for the server itself.
        const stored = await db.get(SECURITY_DOC_ID).catch(() => null);
        return (stored as { security?: SecurityObject } | null)?.security ?? {};
      },
    }),
  );
  // Whose After views are read (the dashboard open on it): those the warmer keeps up to date.
  const viewReads = new Map<string, number>();
  app.use((req: http.IncomingMessage & { path: string }, _res: http.ServerResponse, next: () => void) => {
    const read = AFTER_VIEW_READ.exec(req.path);
    if (read) viewReads.set(cleanFilename(decodeURIComponent(read[1]!)), Date.now());
    next();
  });
  app.use(pouchApp);

  const server = http.createServer(app);
  server.on('error', (err: NodeJS.ErrnoException) => {
    log('error', `cannot listen on ${settings.host}:${settings.port}: ${err.code ?? err.message}`);
    process.exit(1);
  });
  server.listen(settings.port, settings.host, () => {
    log('info', `embedded server listening on ${settings.host}:${settings.port} (pid ${process.pid}, data in ${dir})`);
  });

  const compactor = startCompactor({
    intervalMs: settings.compactIntervalMs,
    listDatabases: () => pouch.allDbs(),
    openDatabase: (name) => getOrCreateDB(pouch, name),
    compactFiles: (name) =>
      new Promise<void>((resolve, reject) => {
        const store = stores.get(prefix + name);
        if (!store) return resolve();
        // Every key: PouchDB's sublevels start with "\xff" (UTF-8 c3 bf).
        store.compactRange(Buffer.from([0x00]), Buffer.alloc(32, 0xff), (err) => (err ? reject(err) : resolve()));
      }),
    diskSize: (name) => directorySize(prefix + name),
    log,
  });

  // Only databases the server has open (it opens one at its first request): opening one by name
  // here could bring back a database deleted a moment before.
  const openDbs = (): Map<string, WarmableDb> => (pouch as unknown as { __dbCacheMap?: Map<string, WarmableDb> }).__dbCacheMap ?? new Map();
  const warmer = startIndexWarmer({
    intervalMs: settings.warmIntervalMs,
    listDatabases: async () => [...openDbs().keys()],
    readRecently: (name) => Date.now() - (viewReads.get(name) ?? -Infinity) < READ_RECENTLY_MS,
    openDatabase: async (name) => {
      const db = openDbs().get(name);
      if (!db) throw new Error(`database ${name} is not open`);
      return db;
    },
    log,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log('info', `stopping on ${signal}`);
    server.close();
    server.closeAllConnections();
    const closed = Promise.all([compactor.stop(), warmer.stop()]);
    const timeout = new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
    void Promise.race([closed, timeout]).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // express-pouchdb leaves some rejections unhandled (an anonymous continuous `_changes` on a
  // members-only database did, before the guard refused it); Node.js would end the server, and
  // every worker's database with it. One line in db.log instead.
  process.on('unhandledRejection', (reason) => {
    const why = reason instanceof Error ? reason.message : typeof reason === 'object' && reason !== null ? JSON.stringify(reason) : String(reason);
    log('error', `unhandled rejection in express-pouchdb: ${why.slice(0, 300)}`);
  });
}

function directorySize(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += directorySize(full);
    else {
      try {
        total += fs.statSync(full).size;
      } catch {
        // removed meanwhile (LevelDB replaces its files as it compacts)
      }
    }
  }
  return total;
}

if (require.main === module) {
  let settings: LauncherSettings;
  try {
    settings = JSON.parse(process.argv[2] ?? '') as LauncherSettings;
  } catch {
    process.stderr.write('usage: launcher.js <settings JSON> (started by `after db start`)\n');
    process.exit(2);
  }
  main(settings);
}

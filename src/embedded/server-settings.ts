/**
 * What the embedded server's process is started with: the settings launcher.ts reads (one
 * JSON argument, nothing secret in it) and the express-pouchdb config file it serves from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULTS } from '../config/defaults';
import { REVS_LIMIT } from '../store/schema';
import type { Logger } from '../log';
import { hashAdminPassword, verifyAdminPassword, type AdminCredentials } from './admin-credentials';

/** How to start the embedded server (server.ts starts it). */
export interface EmbeddedOptions {
  /** Address to bind. @default config.embedded.host ("127.0.0.1") */
  host: string;
  port: number;
  /** Where the LevelDB files live (created when missing). */
  dir: string;
  /** AFTER_HOME: pid, state and log files go here. */
  home: string;
  /** Detach and return once the server answers; otherwise stay attached (see `exited`). */
  background: boolean;
  /** More Host names the server answers to. @default config.embedded.allowed_hosts ([]) */
  allowedHosts?: readonly string[];
  /** Web origins allowed to call it from a browser (CORS). @default [] */
  corsOrigins?: readonly string[];
  /** Largest document, bytes. @default 8000000 (CouchDB's max_document_size) */
  maxDocumentSize?: number;
  /** Largest `_bulk_docs` body, bytes. @default 67108864 */
  maxRequestSize?: number;
  /** Time between compaction passes; 0 = never. @default 300000 */
  compactIntervalMs?: number;
  /** How often the dashboard's views are brought up to date; 0 = never. @default 1000 */
  warmIntervalMs?: number;
  log?: Logger;
}

/** What launcher.ts is started with (one JSON argument: nothing secret in it). */
export interface LauncherSettings {
  host: string;
  port: number;
  dir: string;
  configFile: string;
  /** Where the server's own lines go (db.log). */
  logFile: string;
  allowedHosts: string[];
  corsOrigins: string[];
  maxDocumentBytes: number;
  maxRequestBytes: number;
  compactIntervalMs: number;
  warmIntervalMs: number;
  revsLimit: number;
}

/** The launcher's settings for `options`, after writing the server's config file in its data folder. */
export function launcherSettings(options: EmbeddedOptions, logFile: string, admin: AdminCredentials): LauncherSettings {
  const maxDocumentBytes = options.maxDocumentSize ?? DEFAULTS.embedded.max_document_size;
  return {
    host: options.host,
    port: options.port,
    dir: options.dir,
    configFile: writeServerConfig(options.dir, logFile, admin, maxDocumentBytes),
    logFile,
    allowedHosts: [...(options.allowedHosts ?? DEFAULTS.embedded.allowed_hosts)],
    corsOrigins: [...(options.corsOrigins ?? DEFAULTS.embedded.cors_origins)],
    maxDocumentBytes,
    maxRequestBytes: options.maxRequestSize ?? DEFAULTS.embedded.max_request_size,
    compactIntervalMs: options.compactIntervalMs ?? DEFAULTS.embedded.compact_interval_ms,
    warmIntervalMs: options.warmIntervalMs ?? DEFAULTS.embedded.warm_interval_ms,
    revsLimit: REVS_LIMIT,
  };
}

/**
 * express-pouchdb keeps its settings in this file (the name pouchdb-server gave it, so a data
 * folder it wrote keeps its settings). After sets, on every start:
 * - `admins.<name>`: our admin's `-pbkdf2-` hash, rewritten only when it does not match the
 *   password in AFTER_HOME (so a lost admin file means a new admin at the next start); other
 *   admins an operator added are kept;
 * - `couchdb.max_document_size`: express-pouchdb's JSON body limit (4 GiB by default);
 * - `log`: level "warning", since at "info" it logs one line per HTTP request, without bound
 *   under a worker; `pouchdb_server.no-stdout-logs`, kept for a pouchdb-server reading the folder.
 * Written 0600 through a temporary file, so a crash never leaves half a config.
 */
function writeServerConfig(dir: string, logFile: string, admin: AdminCredentials, maxDocumentBytes: number): string {
  const file = path.join(dir, 'pouchdb-server.json');
  let current: Record<string, Record<string, unknown>> = {};
  try {
    current = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof current;
  } catch {
    // first start (or an unreadable file express-pouchdb would rewrite anyway)
  }
  const admins: Record<string, unknown> = { ...current.admins };
  const stored = admins[admin.name];
  if (typeof stored !== 'string' || !verifyAdminPassword(stored, admin.password)) admins[admin.name] = hashAdminPassword(admin.password);
  const next = {
    ...current,
    admins,
    couchdb: { ...current.couchdb, max_document_size: maxDocumentBytes },
    log: { ...current.log, file: logFile, level: 'warning' },
    pouchdb_server: { ...current.pouchdb_server, 'no-stdout-logs': true },
  };
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(temp, 0o600);
  fs.renameSync(temp, file);
  return file;
}

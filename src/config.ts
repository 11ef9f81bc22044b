/**
 * Configuration: `config.json` (or the file named by AFTER_CONFIG) plus environment
 * overrides, validated once into a frozen, typed object. Every problem is one line that
 * names the file and the field.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';

export interface CouchConfig {
  /** Server URL, without the database name. May carry credentials; never print it raw. */
  url: string;
  /** @default "tasks" */
  db: string;
  /** Merged into the URL when set. @default "" */
  username: string;
  /** Merged into the URL when set. @default "" */
  password: string;
}

export interface EmbeddedConfig {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 5984 */
  port: number;
  /** Where the embedded server keeps its LevelDB files. @default "./data" */
  dir: string;
  /**
   * Host names (beside 127.0.0.1, localhost, [::1] and `host`) the server answers to, as
   * `name` or `name:port`; any other Host header is refused (DNS rebinding). @default []
   */
  allowed_hosts: readonly string[];
  /** Web origins (`https://app.example.com`) whose pages may call the server (CORS). @default [] */
  cors_origins: readonly string[];
  /** Largest document a request may write, bytes (CouchDB's default). @default 8000000 */
  max_document_size: number;
  /** Largest `_bulk_docs` body, bytes; each of its documents still obeys max_document_size. @default 67108864 */
  max_request_size: number;
  /** Time between compactions of every database; 0 turns compaction off. @default 300000 */
  compact_interval_ms: number;
}

export interface WorkerConfig {
  /** Runs at once per instance. @default 10 */
  concurrency: number;
  /** How long a claim holds before another instance may take the task over. @default 30000 */
  lease_ms: number;
  /** Default run timeout when a task sets none; 0 = none. @default 0 */
  timeout_ms: number;
  /** How far ahead tasks are held in memory. @default 120000 */
  horizon_ms: number;
  /** `_changes` heartbeat; the feed reconnects after 2 × this without a byte. @default 10000 */
  heartbeat_ms: number;
  /** On SIGTERM, how long running jobs may take to finish. @default 10000 */
  grace_ms: number;
  /** Runs kept in a task's `history`. @default 10 */
  history_limit: number;
}

export interface LogConfig {
  /** winston level. @default "info" */
  level: string;
  /** Per-worker log files. @default "./logs" */
  dir: string;
}

export interface BuiltinsConfig {
  /** The `exec` job: runs a program named by the task (no shell). @default true */
  exec: boolean;
  /** The `webhook` job: POSTs the task to a URL named by the task. @default true */
  webhook: boolean;
}

export interface AfterConfig {
  couchdb: CouchConfig;
  /** Absolute path of the jobs folder. @default "./jobs" */
  jobs: string;
  /** Built-in jobs; anyone who can write a task can use them, so each can be turned off. */
  builtins: BuiltinsConfig;
  embedded: EmbeddedConfig;
  worker: WorkerConfig;
  log: LogConfig;
  /** Where pid files, logs of background processes and pm2 state go (AFTER_HOME). */
  home: string;
  /** The config file read, or null when none exists and defaults apply. */
  file: string | null;
}

export const DEFAULTS = {
  couchdb: { url: 'http://127.0.0.1:5984', db: 'tasks', username: '', password: '' },
  jobs: './jobs',
  builtins: { exec: true, webhook: true },
  embedded: {
    host: '127.0.0.1',
    port: 5984,
    dir: './data',
    allowed_hosts: [] as readonly string[],
    cors_origins: [] as readonly string[],
    max_document_size: 8_000_000,
    max_request_size: 64 * 1024 * 1024,
    compact_interval_ms: 300_000,
  },
  worker: {
    concurrency: 10,
    lease_ms: 30_000,
    timeout_ms: 0,
    horizon_ms: 120_000,
    heartbeat_ms: 10_000,
    grace_ms: 10_000,
    history_limit: 10,
  },
  log: { level: 'info', dir: './logs' },
} as const;

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

type Env = Record<string, string | undefined>;

/** Load and validate the configuration for this process. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): AfterConfig {
  const explicit = env.AFTER_CONFIG;
  const file = explicit ? path.resolve(cwd, explicit) : path.join(cwd, 'config.json');
  let raw: unknown = {};
  let found: string | null = null;
  if (fs.existsSync(file)) {
    found = file;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
  } else if (explicit) {
    throw new ConfigError(`config file ${file} (AFTER_CONFIG) does not exist`);
  }
  const base = found ? path.dirname(found) : cwd;
  return parseConfig(raw, { file: found ?? '(defaults)', base, env: withSecretsFile(env) });
}

/**
 * Background workers get their database URL (which may carry a password) through a 0600 file
 * named by AFTER_SECRETS_FILE rather than their environment, so pm2's process list never
 * shows it. The file holds a JSON object of AFTER_* overrides.
 */
const SECRET_KEYS = ['AFTER_COUCHDB_URL', 'AFTER_DB'];

function withSecretsFile(env: Env): Env {
  const file = env.AFTER_SECRETS_FILE;
  if (!file) return env;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read AFTER_SECRETS_FILE ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`AFTER_SECRETS_FILE ${file} must hold a JSON object`);
  }
  const merged: Env = { ...env };
  for (const key of SECRET_KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string' && value) merged[key] = value;
  }
  return merged;
}

/** Validate a parsed config object; pure apart from resolving paths against `base`. */
export function parseConfig(raw: unknown, where: { file: string; base: string; env?: Env }): AfterConfig {
  const env = where.env ?? {};
  const v = new Validator(where.file);
  const root = v.object(raw, '');
  v.onlyKeys(root, '', ['couchdb', 'jobs', 'builtins', 'embedded', 'worker', 'log', '$schema', 'comment']);
  const builtins = v.object(root.builtins ?? {}, 'builtins');
  v.onlyKeys(builtins, 'builtins', ['exec', 'webhook']);

  const couch = v.object(root.couchdb ?? {}, 'couchdb');
  v.onlyKeys(couch, 'couchdb', ['url', 'db', 'username', 'password']);
  const embedded = v.object(root.embedded ?? {}, 'embedded');
  v.onlyKeys(embedded, 'embedded', Object.keys(DEFAULTS.embedded));
  const worker = v.object(root.worker ?? {}, 'worker');
  v.onlyKeys(worker, 'worker', Object.keys(DEFAULTS.worker));
  const log = v.object(root.log ?? {}, 'log');
  v.onlyKeys(log, 'log', ['level', 'dir']);

  // With no CouchDB URL configured the embedded server is the database: follow its address.
  const embeddedUrl = `http://${v.string(embedded.host, 'embedded.host', DEFAULTS.embedded.host)}:${v.integer(embedded.port, 'embedded.port', DEFAULTS.embedded.port, 1, 65535)}`;
  const url = env.AFTER_COUCHDB_URL || v.string(couch.url, 'couchdb.url', embeddedUrl);
  v.url(url, env.AFTER_COUCHDB_URL ? 'AFTER_COUCHDB_URL' : 'couchdb.url');
  const db = env.AFTER_DB || v.string(couch.db, 'couchdb.db', DEFAULTS.couchdb.db);
  v.dbName(db, env.AFTER_DB ? 'AFTER_DB' : 'couchdb.db');

  const level = v.string(log.level, 'log.level', DEFAULTS.log.level);
  if (!LOG_LEVELS.includes(level)) v.fail('log.level', `must be one of ${LOG_LEVELS.join(', ')}`);

  const resolve = (p: string): string => path.resolve(where.base, p);
  const config: AfterConfig = {
    couchdb: {
      url,
      db,
      username: v.string(couch.username, 'couchdb.username', ''),
      password: v.string(couch.password, 'couchdb.password', ''),
    },
    jobs: resolve(env.AFTER_JOBS || v.string(root.jobs, 'jobs', DEFAULTS.jobs)),
    builtins: {
      exec: v.boolean(builtins.exec, 'builtins.exec', DEFAULTS.builtins.exec),
      webhook: v.boolean(builtins.webhook, 'builtins.webhook', DEFAULTS.builtins.webhook),
    },
    embedded: {
      host: v.string(embedded.host, 'embedded.host', DEFAULTS.embedded.host),
      port: v.integer(embedded.port, 'embedded.port', DEFAULTS.embedded.port, 1, 65535),
      dir: resolve(v.string(embedded.dir, 'embedded.dir', DEFAULTS.embedded.dir)),
      allowed_hosts: v.stringList(embedded.allowed_hosts, 'embedded.allowed_hosts', (item) => /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(item), 'a host name or address, optionally with :port'),
      cors_origins: v.stringList(embedded.cors_origins, 'embedded.cors_origins', isOrigin, 'an origin such as "https://app.example.com" (scheme, host and port only)'),
      max_document_size: v.integer(embedded.max_document_size, 'embedded.max_document_size', DEFAULTS.embedded.max_document_size, 1024, 4 * 1024 * 1024 * 1024),
      max_request_size: v.integer(embedded.max_request_size, 'embedded.max_request_size', DEFAULTS.embedded.max_request_size, 1024, 4 * 1024 * 1024 * 1024),
      compact_interval_ms: compactInterval(v, embedded.compact_interval_ms),
    },
    worker: {
      concurrency: v.integer(worker.concurrency, 'worker.concurrency', DEFAULTS.worker.concurrency, 1, 10_000),
      lease_ms: v.integer(worker.lease_ms, 'worker.lease_ms', DEFAULTS.worker.lease_ms, 1000, 86_400_000),
      timeout_ms: v.integer(worker.timeout_ms, 'worker.timeout_ms', DEFAULTS.worker.timeout_ms, 0, 2_147_483_647),
      horizon_ms: v.integer(worker.horizon_ms, 'worker.horizon_ms', DEFAULTS.worker.horizon_ms, 1000, 86_400_000),
      heartbeat_ms: v.integer(worker.heartbeat_ms, 'worker.heartbeat_ms', DEFAULTS.worker.heartbeat_ms, 100, 600_000),
      grace_ms: v.integer(worker.grace_ms, 'worker.grace_ms', DEFAULTS.worker.grace_ms, 0, 3_600_000),
      history_limit: v.integer(worker.history_limit, 'worker.history_limit', DEFAULTS.worker.history_limit, 0, 1000),
    },
    log: { level, dir: resolve(v.string(log.dir, 'log.dir', DEFAULTS.log.dir)) },
    home: env.AFTER_HOME ? path.resolve(where.base, env.AFTER_HOME) : resolve('.after'),
    file: where.file === '(defaults)' ? null : where.file,
  };
  return deepFreeze(config);
}

class Validator {
  constructor(private readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(`config ${this.file}: ${field || '(top level)'} ${problem}`);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'must be an object');
    return value as Record<string, unknown>;
  }

  onlyKeys(obj: Record<string, unknown>, field: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(field ? `${field}.${key}` : key, `is not a known setting (known: ${allowed.filter((k) => !k.startsWith('$') && k !== 'comment').join(', ')})`);
      }
    }
  }

  string(value: unknown, field: string, fallback: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(value)}`);
    return value;
  }

  /** An array of strings, each accepted by `valid`; `what` says what one must look like. */
  stringList(value: unknown, field: string, valid: (item: string) => boolean, what: string): readonly string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(field, `must be an array of strings, got ${JSON.stringify(value)}`);
    return value.map((item: unknown, i) => {
      if (typeof item !== 'string' || !valid(item)) this.fail(`${field}[${i}]`, `must be ${what}, got ${JSON.stringify(item)}`);
      return item;
    });
  }

  boolean(value: unknown, field: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  integer(value: unknown, field: string, fallback: number, min: number, max: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  url(value: string, field: string): void {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      this.fail(field, 'must be an http(s) URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') this.fail(field, 'must be an http(s) URL');
  }

  dbName(value: string, field: string): void {
    // CouchDB's own rule for database names.
    if (!/^[a-z][a-z0-9_$()+/-]*$/.test(value)) {
      this.fail(field, `must be a CouchDB database name (lowercase letter first, then a-z 0-9 _$()+-/), got ${JSON.stringify(value)}`);
    }
  }
}

/** `scheme://host[:port]`, nothing else: what a browser sends as Origin. */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '').toLowerCase();
  } catch {
    return false;
  }
}

/** 0 (off) or at least one second between compactions. */
function compactInterval(v: Validator, value: unknown): number {
  const ms = v.integer(value, 'embedded.compact_interval_ms', DEFAULTS.embedded.compact_interval_ms, 0, 86_400_000);
  if (ms !== 0 && ms < 1000) v.fail('embedded.compact_interval_ms', `must be 0 (off) or at least 1000, got ${ms}`);
  return ms;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The server URL with username/password from config merged in (for nano only). */
export function authenticatedUrl(couch: CouchConfig): string {
  const url = new URL(couch.url);
  if (couch.username) url.username = encodeURIComponent(couch.username);
  if (couch.password) url.password = encodeURIComponent(couch.password);
  return url.toString().replace(/\/$/, '');
}

/** A URL fit to print: credentials removed. */
export function scrubUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url.replace(/\/$/, '');
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

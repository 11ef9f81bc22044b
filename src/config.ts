/**
 * Configuration: `config.json` (or the file named by AFTER_CONFIG) plus environment
 * overrides, validated once into a frozen, typed object. Every problem is one line that
 * names the file and the field, and never quotes a secret: a JSON syntax error gives a line and
 * a column (V8's own message quotes the text around the error, which may be the password), and
 * a bad credential or URL setting is described by its type only.
 *
 * The checks are config-validator.ts, the larger sections (embedded, worker, commands, limits)
 * config-sections.ts, the JSON reading json-file.ts, the credential variables secret-env.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCommands, parseEmbedded, parseLimits, parseWorker } from './config-sections';
import { Validator } from './config-validator';
import { ConfigError } from './errors';
import { parseJsonFile } from './json-file';
import { withSecretsFile } from './secret-env';

export interface CouchConfig {
  /** Server URL, without the database name. May carry credentials; never print it raw. */
  url: string;
  /** @default "tasks" */
  db: string;
  /** Merged into the URL when set. @default "" */
  username: string;
  /** Merged into the URL when set. @default "" */
  password: string;
  /**
   * `after init` installs the validate_doc_update that refuses invalid tasks at write time.
   * Opt-in: CouchDB runs it in couchjs for every write, workers' included. @default false
   */
  validate_doc_update: boolean;
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
  /**
   * How often the server brings the dashboard's views up to date by itself (as CouchDB's
   * background indexer does), so that no reader waits for them; 0 turns it off. @default 1000
   */
  warm_interval_ms: number;
}

export interface StatsConfig {
  /** Workers record their run figures in `<db>_stats` (one write per instance per minute at most). @default true */
  record: boolean;
  /** Figures older than this many days are deleted. @default 90 */
  retention_days: number;
  /** How often an instance writes its figures (tests and demos shorten it). @default 60000 */
  flush_ms: number;
}

export interface UiConfig {
  /** Signed-in users with this role (or admins) may act on tasks; other members only read. @default "after-operator" */
  operator_role: string;
  /** A dashboard session unused this long ends (sign in again). @default 1800000 (30 min) */
  session_idle_ms: number;
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
  /** Repeats shorter than this are refused (the task goes to `error`). @default 1000 */
  min_repeat_ms: number;
  /**
   * How long past its date another instance's task stays unclaimed before this instance claims
   * it (instances split the tasks among themselves; this is how they cover for a busy or gone
   * one). @default 2000
   */
  claim_grace_ms: number;
  /**
   * Limit of a run of a command or of `exec` when neither the task (`timeout`) nor the
   * command's binding (`timeout`) sets one; 0 = none. @default 3600000 (1 h)
   */
  program_timeout_ms: number;
}

export interface LogConfig {
  /** winston level. @default "info" */
  level: string;
  /** Per-worker log files. @default "./logs" */
  dir: string;
}

export interface BuiltinsConfig {
  /**
   * The `exec` job: runs any program a task names (no shell), so every task writer may run
   * programs as the worker's user. An explicit opt-in. @default false
   */
  exec: boolean;
  /** The `webhook` job: POSTs the task to a URL named by the task. @default true */
  webhook: boolean;
}

/**
 * A program bound to a job name by the operator (Periodic's way): a task names the command
 * and may only add what the binding allows.
 */
export interface CommandBinding {
  /** The program (absolute, a path relative to the config file, or a name looked up in PATH) and its fixed arguments. */
  argv: readonly string[];
  /** What a task may add: nothing ("none"), or its `job.arguments` after `argv` ("append"). @default "none" */
  arguments: 'none' | 'append';
  /** What the program reads: nothing ("none", stdin closed), the task's `data` ("data") or the whole task ("task"), as JSON. @default "none" */
  stdin: 'none' | 'data' | 'task';
  /** Limit of a run when the task sets no `timeout`; null = worker.program_timeout_ms. @default null */
  timeout_ms: number | null;
  /** Fixed variables added to the program's minimal environment. @default {} */
  env: Readonly<Record<string, string>>;
  /** Absolute folder the program runs in; null = the worker's current folder. @default null */
  cwd: string | null;
}

/**
 * A limit on a worker name (`"mailer"`) or on one job of it (`"mailer/send_email"`), held by all
 * the name's live instances together (each takes a share by its rank among them).
 */
export interface LimitConfig {
  /** At most `count` runs start in any window of `period_ms`; null = no rate limit. */
  rate: { count: number; period_ms: number } | null;
  /** At most this many runs at once; null = no concurrency limit. */
  concurrency: number | null;
}

export interface AfterConfig {
  couchdb: CouchConfig;
  /** Absolute path of the jobs folder. @default "./jobs" */
  jobs: string;
  /** Built-in jobs; anyone who can write a task can use them, so each can be turned off. */
  builtins: BuiltinsConfig;
  /** Programs bound to job names, by name. @default {} */
  commands: Readonly<Record<string, CommandBinding>>;
  /** Rate and concurrency limits by worker name or `<worker>/<job>`. @default {} */
  limits: Readonly<Record<string, LimitConfig>>;
  embedded: EmbeddedConfig;
  worker: WorkerConfig;
  stats: StatsConfig;
  ui: UiConfig;
  log: LogConfig;
  /** Where pid files, logs of background processes and pm2 state go (AFTER_HOME). */
  home: string;
  /** The config file read, or null when none exists and defaults apply. */
  file: string | null;
}

export const DEFAULTS = {
  couchdb: { url: 'http://127.0.0.1:5984', db: 'tasks', username: '', password: '', validate_doc_update: false },
  jobs: './jobs',
  builtins: { exec: false, webhook: true },
  embedded: {
    host: '127.0.0.1',
    port: 5984,
    dir: './data',
    allowed_hosts: [] as readonly string[],
    cors_origins: [] as readonly string[],
    max_document_size: 8_000_000,
    max_request_size: 64 * 1024 * 1024,
    compact_interval_ms: 300_000,
    warm_interval_ms: 1000,
  },
  worker: {
    concurrency: 10,
    lease_ms: 30_000,
    timeout_ms: 0,
    horizon_ms: 120_000,
    heartbeat_ms: 10_000,
    grace_ms: 10_000,
    history_limit: 10,
    min_repeat_ms: 1000,
    claim_grace_ms: 2000,
    program_timeout_ms: 3_600_000,
  },
  stats: { record: true, retention_days: 90, flush_ms: 60_000 },
  ui: { operator_role: 'after-operator', session_idle_ms: 1_800_000 },
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
    raw = parseJsonFile(text, `config file ${file}`);
  } else if (explicit) {
    throw new ConfigError(`config file ${file} (AFTER_CONFIG) does not exist`);
  }
  const base = found ? path.dirname(found) : cwd;
  return parseConfig(raw, { file: found ?? '(defaults)', base, env: withSecretsFile(env) });
}

/** Validate a parsed config object; pure apart from resolving paths against `base`. */
export function parseConfig(raw: unknown, where: { file: string; base: string; env?: Env }): AfterConfig {
  const env = where.env ?? {};
  const v = new Validator(where.file);
  const root = v.object(raw, '');
  v.onlyKeys(root, '', ['couchdb', 'jobs', 'builtins', 'commands', 'limits', 'embedded', 'worker', 'stats', 'ui', 'log', '$schema', 'comment']);
  const builtins = v.object(root.builtins ?? {}, 'builtins');
  v.onlyKeys(builtins, 'builtins', ['exec', 'webhook']);

  const couch = v.object(root.couchdb ?? {}, 'couchdb');
  v.onlyKeys(couch, 'couchdb', ['url', 'db', 'username', 'password', 'validate_doc_update']);
  const embedded = v.object(root.embedded ?? {}, 'embedded');
  v.onlyKeys(embedded, 'embedded', Object.keys(DEFAULTS.embedded));
  const worker = v.object(root.worker ?? {}, 'worker');
  v.onlyKeys(worker, 'worker', Object.keys(DEFAULTS.worker));
  const stats = v.object(root.stats ?? {}, 'stats');
  v.onlyKeys(stats, 'stats', Object.keys(DEFAULTS.stats));
  const ui = v.object(root.ui ?? {}, 'ui');
  v.onlyKeys(ui, 'ui', Object.keys(DEFAULTS.ui));
  const log = v.object(root.log ?? {}, 'log');
  v.onlyKeys(log, 'log', ['level', 'dir']);

  // With no CouchDB URL configured the embedded server is the database: follow its address.
  const embeddedUrl = `http://${v.string(embedded.host, 'embedded.host', DEFAULTS.embedded.host)}:${v.integer(embedded.port, 'embedded.port', DEFAULTS.embedded.port, 1, 65535)}`;
  // A URL may carry `user:password@`: a bad one is never quoted.
  const url = env.AFTER_COUCHDB_URL || v.secretString(couch.url, 'couchdb.url', embeddedUrl);
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
      username: v.secretString(couch.username, 'couchdb.username', ''),
      password: v.secretString(couch.password, 'couchdb.password', ''),
      validate_doc_update: v.boolean(couch.validate_doc_update, 'couchdb.validate_doc_update', false),
    },
    jobs: resolve(env.AFTER_JOBS || v.string(root.jobs, 'jobs', DEFAULTS.jobs)),
    builtins: {
      exec: v.boolean(builtins.exec, 'builtins.exec', DEFAULTS.builtins.exec),
      webhook: v.boolean(builtins.webhook, 'builtins.webhook', DEFAULTS.builtins.webhook),
    },
    commands: parseCommands(v, root.commands ?? {}, resolve),
    limits: parseLimits(v, root.limits ?? {}),
    embedded: parseEmbedded(v, embedded, DEFAULTS.embedded, resolve),
    worker: parseWorker(v, worker, DEFAULTS.worker),
    stats: {
      record: v.boolean(stats.record, 'stats.record', DEFAULTS.stats.record),
      retention_days: v.integer(stats.retention_days, 'stats.retention_days', DEFAULTS.stats.retention_days, 1, 3650),
      flush_ms: v.integer(stats.flush_ms, 'stats.flush_ms', DEFAULTS.stats.flush_ms, 1000, 3_600_000),
    },
    ui: {
      operator_role: v.string(ui.operator_role, 'ui.operator_role', DEFAULTS.ui.operator_role),
      session_idle_ms: v.integer(ui.session_idle_ms, 'ui.session_idle_ms', DEFAULTS.ui.session_idle_ms, 60_000, 7 * 86_400_000),
    },
    log: { level, dir: resolve(v.string(log.dir, 'log.dir', DEFAULTS.log.dir)) },
    home: env.AFTER_HOME ? path.resolve(where.base, env.AFTER_HOME) : resolve('.after'),
    file: where.file === '(defaults)' ? null : where.file,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The server URL with username/password from config merged in (for nano only). */
export function authenticatedUrl(couch: Pick<CouchConfig, 'url' | 'username' | 'password'>): string {
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

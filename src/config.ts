/**
 * Configuration: `config.json` (or the file named by AFTER_CONFIG) plus environment
 * overrides, validated once into a frozen, typed object. Every problem is one line that
 * names the file and the field, and never quotes a secret: a JSON syntax error gives a line and
 * a column (V8's own message quotes the text around the error, which may be the password), and
 * a bad credential or URL setting is described by its type only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc, ParseErrorCode, type ParseError } from 'jsonc-parser';
import { ConfigError } from './errors';
import { isJobName } from './jobs/job-name';

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

/**
 * The environment variables that may carry a credential (a URL with a password) or say which
 * database to use. They never reach a program a job runs, pm2's process list, or the
 * environment of a worker process: a background worker gets them through its secrets file
 * (AFTER_SECRETS_FILE), a foreground worker from its launcher through a pipe.
 */
export const SECRET_ENV_KEYS = ['AFTER_COUCHDB_URL', 'AFTER_DB'] as const;

/** The values of SECRET_ENV_KEYS a secrets file holds: a JSON object of those keys. */
export function readSecretsFile(file: string): Partial<Record<(typeof SECRET_ENV_KEYS)[number], string>> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read AFTER_SECRETS_FILE ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const parsed = parseJsonFile(text, `AFTER_SECRETS_FILE ${file}`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`AFTER_SECRETS_FILE ${file} must hold a JSON object`);
  }
  const found: Partial<Record<(typeof SECRET_ENV_KEYS)[number], string>> = {};
  for (const key of SECRET_ENV_KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string' && value) found[key] = value;
  }
  return found;
}

/** The environment with what AFTER_SECRETS_FILE holds merged in (the file wins). */
function withSecretsFile(env: Env): Env {
  const file = env.AFTER_SECRETS_FILE;
  if (!file) return env;
  return { ...env, ...readSecretsFile(file) };
}

/** Validate a parsed config object; pure apart from resolving paths against `base`. */
export function parseConfig(raw: unknown, where: { file: string; base: string; env?: Env }): AfterConfig {
  const env = where.env ?? {};
  const v = new Validator(where.file);
  const root = v.object(raw, '');
  v.onlyKeys(root, '', ['couchdb', 'jobs', 'builtins', 'commands', 'limits', 'embedded', 'worker', 'log', '$schema', 'comment']);
  const builtins = v.object(root.builtins ?? {}, 'builtins');
  v.onlyKeys(builtins, 'builtins', ['exec', 'webhook']);

  const couch = v.object(root.couchdb ?? {}, 'couchdb');
  v.onlyKeys(couch, 'couchdb', ['url', 'db', 'username', 'password', 'validate_doc_update']);
  const embedded = v.object(root.embedded ?? {}, 'embedded');
  v.onlyKeys(embedded, 'embedded', Object.keys(DEFAULTS.embedded));
  const worker = v.object(root.worker ?? {}, 'worker');
  v.onlyKeys(worker, 'worker', Object.keys(DEFAULTS.worker));
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
      min_repeat_ms: v.integer(worker.min_repeat_ms, 'worker.min_repeat_ms', DEFAULTS.worker.min_repeat_ms, 1, 86_400_000),
      claim_grace_ms: v.integer(worker.claim_grace_ms, 'worker.claim_grace_ms', DEFAULTS.worker.claim_grace_ms, 0, 3_600_000),
      program_timeout_ms: v.integer(worker.program_timeout_ms, 'worker.program_timeout_ms', DEFAULTS.worker.program_timeout_ms, 0, MAX_TIMEOUT_MS),
    },
    log: { level, dir: resolve(v.string(log.dir, 'log.dir', DEFAULTS.log.dir)) },
    home: env.AFTER_HOME ? path.resolve(where.base, env.AFTER_HOME) : resolve('.after'),
    file: where.file === '(defaults)' ? null : where.file,
  };
  return deepFreeze(config);
}

/** setTimeout's limit: a longer timeout would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** A command binding's settings. */
const COMMAND_KEYS = ['argv', 'arguments', 'stdin', 'timeout', 'env', 'cwd', 'comment'];
/** Variables After sets itself in a program's environment, or keeps from it. */
const RESERVED_PROGRAM_ENV = new Set<string>(['AFTER_TASK_ID', 'AFTER_RUN_COOKIE', 'AFTER_SECRETS_FILE', ...SECRET_ENV_KEYS]);

/**
 * The `commands` section: `{"backup": {"argv": ["/usr/local/bin/backup", "--full"], "stdin":
 * "data", "timeout": "1h"}}`. Whether each program exists is checked when the jobs are loaded
 * (a problem reported with the jobs folder's), not here.
 */
function parseCommands(v: Validator, raw: unknown, resolve: (p: string) => string): Record<string, CommandBinding> {
  const section = v.object(raw, 'commands');
  const commands: Record<string, CommandBinding> = {};
  for (const name of Object.keys(section)) {
    const field = `commands.${name}`;
    if (!isJobName(name)) v.fail(field, 'cannot be a job name (a job name has no "/", "\\" or NUL)');
    const binding = v.object(section[name], field);
    v.onlyKeys(binding, field, COMMAND_KEYS);
    const argv = binding.argv;
    if (!Array.isArray(argv) || argv.length === 0) {
      v.fail(`${field}.argv`, 'must be a non-empty array: the program, then its fixed arguments');
    }
    argv.forEach((arg: unknown, i: number) => {
      if (typeof arg !== 'string' || arg.includes('\0')) v.fail(`${field}.argv[${i}]`, `must be a string without NUL, got ${JSON.stringify(arg)}`);
    });
    if (argv[0] === '') v.fail(`${field}.argv[0]`, 'must name the program');
    const program = argv[0] as string;
    // A path relative to the config file, like every other path in it; a bare name is looked up in PATH.
    const resolvedProgram = program.includes('/') && !path.isAbsolute(program) ? resolve(program) : program;
    const args = v.oneOf(binding.arguments, `${field}.arguments`, ['none', 'append'] as const, 'none');
    const stdin = v.oneOf(binding.stdin, `${field}.stdin`, ['none', 'data', 'task'] as const, 'none');
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(v.object(binding.env ?? {}, `${field}.env`))) {
      if (key === '' || /[=\0]/.test(key)) v.fail(`${field}.env`, `has a variable name that cannot be one: ${JSON.stringify(key)}`);
      if (RESERVED_PROGRAM_ENV.has(key)) v.fail(`${field}.env.${key}`, 'is set by After itself (or is a credential it never hands to a program)');
      // The value is not quoted: a command's env may hold a token.
      if (typeof value !== 'string' || value.includes('\0')) v.fail(`${field}.env.${key}`, 'must be a string without NUL');
      env[key] = value;
    }
    const cwd = binding.cwd === undefined ? null : resolve(v.string(binding.cwd, `${field}.cwd`, ''));
    commands[name] = {
      argv: [resolvedProgram, ...(argv.slice(1) as string[])],
      arguments: args,
      stdin,
      timeout_ms: binding.timeout === undefined ? null : v.timeout(binding.timeout, `${field}.timeout`),
      env,
      cwd,
    };
  }
  return commands;
}

/** A limit's settings. */
const LIMIT_KEYS = ['rate', 'concurrency', 'comment'];
/** Units of a rate's period, by the names people write. */
const RATE_UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['s', 1000], ['sec', 1000], ['second', 1000], ['seconds', 1000],
  ['m', 60_000], ['min', 60_000], ['minute', 60_000], ['minutes', 60_000],
  ['h', 3_600_000], ['hour', 3_600_000], ['hours', 3_600_000],
  ['d', 86_400_000], ['day', 86_400_000], ['days', 86_400_000],
]);
const RATE = /^\s*(\d{1,9})\s*\/\s*(\d{1,6})?\s*([a-z]+)\s*$/;
const MAX_RATE_PERIOD_MS = 7 * 86_400_000;

/**
 * The `limits` section: `{"mailer": {"rate": "100/min"}, "mailer/send_email": {"rate": "5/s",
 * "concurrency": 2}}`. A key is a worker name, or `<worker>/<job>` for one job of it (job names
 * never contain "/"). A rate is `<count>/<period>`: `5/s`, `100/min`, `1000/h`, `20/10s`.
 */
function parseLimits(v: Validator, raw: unknown): Record<string, LimitConfig> {
  const section = v.object(raw, 'limits');
  const limits: Record<string, LimitConfig> = {};
  for (const key of Object.keys(section)) {
    const field = `limits.${key}`;
    if (key === '' || /[\u0000-\u001f\u007f]/.test(key) || key.startsWith('/') || key.endsWith('/')) {
      v.fail(`limits.${JSON.stringify(key)}`, 'must be a worker name or <worker>/<job>');
    }
    const limit = v.object(section[key], field);
    v.onlyKeys(limit, field, LIMIT_KEYS);
    if (limit.rate === undefined && limit.concurrency === undefined) v.fail(field, 'must set "rate" (e.g. "100/min") or "concurrency" (or both)');
    limits[key] = {
      rate: limit.rate === undefined ? null : parseRate(v, limit.rate, `${field}.rate`),
      concurrency: limit.concurrency === undefined ? null : v.integer(limit.concurrency, `${field}.concurrency`, 1, 1, 10_000),
    };
  }
  return limits;
}

function parseRate(v: Validator, value: unknown, field: string): { count: number; period_ms: number } {
  const expected = 'must be "<count>/<period>", e.g. "5/s", "100/min", "1000/h", "20/10s"';
  const match = typeof value === 'string' ? RATE.exec(value) : null;
  const unitMs = match ? RATE_UNIT_MS.get(match[3]!) : undefined;
  if (!match || unitMs === undefined) v.fail(field, `${expected}, got ${JSON.stringify(value)}`);
  const count = Number(match[1]);
  const periodMs = Number(match[2] ?? 1) * unitMs;
  if (count < 1) v.fail(field, `must allow at least 1 run per period, got ${JSON.stringify(value)}`);
  if (periodMs < 1000 || periodMs > MAX_RATE_PERIOD_MS) v.fail(field, `must have a period from 1 s to 7 days, got ${JSON.stringify(value)}`);
  return { count, period_ms: periodMs };
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

  /** A setting that may hold a credential (a password, a user name, a URL with both): a bad value is named by its type, never shown. */
  secretString(value: unknown, field: string, fallback: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${describeType(value)}`);
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

  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as T;
  }

  /** A timeout: milliseconds, or units `1h`, `30m`, `90s`, `500ms`, `1d` (combined: `1h30m`). */
  timeout(value: unknown, field: string): number {
    const expected = 'must be a number of milliseconds or a duration such as "1h", "30m", "90s", "1h30m"';
    let ms: number;
    if (typeof value === 'number') ms = value;
    else if (typeof value === 'string' && /^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(value.trim())) {
      const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
      ms = 0;
      for (const [, amount, , unit] of value.trim().matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(amount) * unitMs[unit!]!;
      ms = Math.round(ms);
    } else this.fail(field, `${expected}, got ${JSON.stringify(value)}`);
    if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
      this.fail(field, `must be from 1 ms to ${MAX_TIMEOUT_MS} ms (about 24 days), got ${JSON.stringify(value)}`);
    }
    return ms;
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

/** `a number`, `an object`...: what a value is, without what it says. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** What each syntax error means, in words that quote nothing from the file. */
const JSON_PROBLEMS: Partial<Record<ParseErrorCode, string>> = {
  [ParseErrorCode.InvalidSymbol]: 'unexpected character; text values must be in double quotes',
  [ParseErrorCode.InvalidNumberFormat]: 'malformed number',
  [ParseErrorCode.UnexpectedEndOfNumber]: 'malformed number',
  [ParseErrorCode.PropertyNameExpected]: 'a property name in double quotes was expected; is there a trailing comma?',
  [ParseErrorCode.ValueExpected]: 'a value was expected',
  [ParseErrorCode.ColonExpected]: "':' was expected",
  [ParseErrorCode.CommaExpected]: "',' was expected",
  [ParseErrorCode.CloseBraceExpected]: "'}' was expected",
  [ParseErrorCode.CloseBracketExpected]: "']' was expected",
  [ParseErrorCode.EndOfFileExpected]: 'more text after the end of the JSON value',
  [ParseErrorCode.InvalidCommentToken]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfComment]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfString]: 'a string is not closed',
  [ParseErrorCode.InvalidUnicode]: 'malformed \\u escape in a string',
  [ParseErrorCode.InvalidEscapeCharacter]: 'unknown escape sequence in a string',
  [ParseErrorCode.InvalidCharacter]: 'control character inside a string',
};

/**
 * JSON.parse, with a syntax error reported as `<what> is not valid JSON at line L, column C:
 * <problem>`. V8's message quotes the source around the error (`..."password": s3cr3t}"`),
 * so it is never used: jsonc-parser (strict mode: no comments, no trailing commas) finds the
 * offset of the first error and what was expected there.
 */
export function parseJsonFile(text: string, what: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const errors: ParseError[] = [];
    parseJsonc(body, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    // Both parsers follow RFC 8259; should jsonc-parser find nothing, V8's position (never its text) still helps.
    const offset = first?.offset ?? Number(/at position (\d+)/.exec((err as Error).message)?.[1] ?? NaN);
    const problem = first === undefined ? '' : `: ${JSON_PROBLEMS[first.error] ?? 'syntax error'}`;
    if (Number.isNaN(offset)) throw new ConfigError(`${what} is not valid JSON${problem}`);
    const { line, column } = lineAndColumn(body, offset);
    throw new ConfigError(`${what} is not valid JSON at line ${line}, column ${column}${problem}`);
  }
}

/** 1-based line and column of a UTF-16 offset; a column counts characters, as editors do. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf('\n') + 1;
  const line = before.split('\n').length;
  return { line, column: Array.from(before.slice(lineStart)).length + 1 };
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

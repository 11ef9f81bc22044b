/**
 * Configuration: `config.json` (or the file named by AFTER_CONFIG) plus environment
 * overrides, validated once into a frozen, typed object. Every problem is one line that
 * names the file and the field, and never quotes a secret: a JSON syntax error gives a line and
 * a column (V8's own message quotes the text around the error, which may be the password), and
 * a bad credential or URL setting is described by its type only.
 *
 * The checks are validator.ts, the larger sections (embedded, worker, commands, limits)
 * sections.ts, the JSON reading json-file.ts, the credential variables secret-env.ts, the types
 * types.ts and the defaults defaults.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { DEFAULTS } from './defaults';
import { parseJsonFile } from './json-file';
import { withSecretsFile } from './secret-env';
import { parseCommands, parseEmbedded, parseLimits, parseWorker } from './sections';
import type { AfterConfig } from './types';
import { Validator } from './validator';

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
  // The embedded server's door follows the task size limit unless told otherwise.
  const workerConfig = parseWorker(v, worker, DEFAULTS.worker);
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
    embedded: parseEmbedded(v, embedded, { ...DEFAULTS.embedded, max_document_size: workerConfig.max_task_size }, resolve),
    worker: workerConfig,
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


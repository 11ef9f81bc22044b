/**
 * The sections of config.json with more to them than a flat list of settings: `embedded`,
 * `worker`, `commands` and `limits`, each validated field by field (config.ts reads the rest).
 */
import * as path from 'node:path';
import type { CommandBinding, EmbeddedConfig, LimitConfig, WorkerConfig } from './types';
import { MAX_TIMEOUT_MS, type Validator } from './validator';
import { isJobName } from '../task/job-name';
import { SECRET_ENV_KEYS } from './secret-env';

/** The `embedded` section, paths resolved by `resolve`. */
export function parseEmbedded(v: Validator, embedded: Record<string, unknown>, defaults: EmbeddedConfig, resolve: (p: string) => string): EmbeddedConfig {
  return {
    host: v.string(embedded.host, 'embedded.host', defaults.host),
    port: v.integer(embedded.port, 'embedded.port', defaults.port, 1, 65535),
    dir: resolve(v.string(embedded.dir, 'embedded.dir', defaults.dir)),
    allowed_hosts: v.stringList(embedded.allowed_hosts, 'embedded.allowed_hosts', (item) => /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(item), 'a host name or address, optionally with :port'),
    cors_origins: v.stringList(embedded.cors_origins, 'embedded.cors_origins', isOrigin, 'an origin such as "https://app.example.com" (scheme, host and port only)'),
    max_document_size: v.integer(embedded.max_document_size, 'embedded.max_document_size', defaults.max_document_size, 1024, 4 * 1024 * 1024 * 1024),
    max_request_size: v.integer(embedded.max_request_size, 'embedded.max_request_size', defaults.max_request_size, 1024, 4 * 1024 * 1024 * 1024),
    compact_interval_ms: compactInterval(v, embedded.compact_interval_ms, defaults.compact_interval_ms),
    warm_interval_ms: v.integer(embedded.warm_interval_ms, 'embedded.warm_interval_ms', defaults.warm_interval_ms, 0, 3_600_000),
  };
}

/** The `worker` section. */
export function parseWorker(v: Validator, worker: Record<string, unknown>, defaults: WorkerConfig): WorkerConfig {
  return {
    concurrency: v.integer(worker.concurrency, 'worker.concurrency', defaults.concurrency, 1, 10_000),
    lease_ms: v.integer(worker.lease_ms, 'worker.lease_ms', defaults.lease_ms, 1000, 86_400_000),
    timeout_ms: v.integer(worker.timeout_ms, 'worker.timeout_ms', defaults.timeout_ms, 0, MAX_TIMEOUT_MS),
    horizon_ms: v.integer(worker.horizon_ms, 'worker.horizon_ms', defaults.horizon_ms, 1000, 86_400_000),
    heartbeat_ms: v.integer(worker.heartbeat_ms, 'worker.heartbeat_ms', defaults.heartbeat_ms, 100, 600_000),
    grace_ms: v.integer(worker.grace_ms, 'worker.grace_ms', defaults.grace_ms, 0, 3_600_000),
    history_limit: v.integer(worker.history_limit, 'worker.history_limit', defaults.history_limit, 0, 1000),
    min_repeat_ms: v.integer(worker.min_repeat_ms, 'worker.min_repeat_ms', defaults.min_repeat_ms, 1, 86_400_000),
    claim_grace_ms: v.integer(worker.claim_grace_ms, 'worker.claim_grace_ms', defaults.claim_grace_ms, 0, 3_600_000),
    program_timeout_ms: v.integer(worker.program_timeout_ms, 'worker.program_timeout_ms', defaults.program_timeout_ms, 0, MAX_TIMEOUT_MS),
    // CouchDB refuses documents over its max_document_size (8,000,000 by default) whatever this says.
    max_task_size: v.integer(worker.max_task_size, 'worker.max_task_size', defaults.max_task_size, 1024, 8_000_000),
    program_user: userName(v, worker.program_user, 'worker.program_user'),
  };
}

/** A user name (or uid) for programs, or null when none is given; whether it exists is checked when the jobs are loaded. */
function userName(v: Validator, value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  const name = v.string(value, field, '');
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/.test(name)) v.fail(field, 'must be a user name (or a uid) of this machine');
  return name;
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
function compactInterval(v: Validator, value: unknown, fallback: number): number {
  const ms = v.integer(value, 'embedded.compact_interval_ms', fallback, 0, 86_400_000);
  if (ms !== 0 && ms < 1000) v.fail('embedded.compact_interval_ms', `must be 0 (off) or at least 1000, got ${ms}`);
  return ms;
}

/** A command binding's settings. */
const COMMAND_KEYS = ['argv', 'arguments', 'stdin', 'timeout', 'env', 'cwd', 'user', 'comment'];
/** Variables After sets itself in a program's environment, or keeps from it. */
const RESERVED_PROGRAM_ENV = new Set<string>(['AFTER_TASK_ID', 'AFTER_RUN_COOKIE', 'AFTER_SECRETS_FILE', ...SECRET_ENV_KEYS]);

/**
 * The `commands` section: `{"backup": {"argv": ["/usr/local/bin/backup", "--full"], "stdin":
 * "data", "timeout": "1h"}}`. Whether each program exists is checked when the jobs are loaded
 * (a problem reported with the jobs folder's), not here.
 */
export function parseCommands(v: Validator, raw: unknown, resolve: (p: string) => string): Record<string, CommandBinding> {
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
      user: userName(v, binding.user, `${field}.user`),
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
export function parseLimits(v: Validator, raw: unknown): Record<string, LimitConfig> {
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

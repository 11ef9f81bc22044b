/**
 * The configuration as every part reads it: `config.json` (or AFTER_CONFIG) plus environment
 * overrides, validated once by load.ts into a frozen object of these types. Each setting says
 * what it does and its default (defaults.ts).
 */
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
  /**
   * Largest document a request may write, bytes: refused with 413 above it.
   * @default worker.max_task_size (1000000)
   */
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
  /**
   * Largest task document, in bytes of JSON (at most 8000000, CouchDB's own limit). A larger task
   * ends in `error` naming its size; the embedded server refuses it at the door
   * (embedded.max_document_size follows this unless set). @default 1000000
   */
  max_task_size: number;
  /**
   * The user the programs of commands and `exec` run as, when the worker runs as root; a worker
   * that is not root runs them as itself (and refuses any other user). null: `nobody` for a root
   * worker. A command's own `user` wins. @default null
   */
  program_user: string | null;
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
  /** The user it runs as (needs a root worker); null = worker.program_user. @default null */
  user: string | null;
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

import { DEFAULT_MAX_TASK_BYTES } from '../task/validate';

/** Every setting's default value (docs/spec.md §6): what a missing key means. */
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
    max_document_size: DEFAULT_MAX_TASK_BYTES,
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
    max_task_size: DEFAULT_MAX_TASK_BYTES,
    program_user: null as string | null,
  },
  stats: { record: true, retention_days: 90, flush_ms: 60_000 },
  ui: { operator_role: 'after-operator', session_idle_ms: 1_800_000 },
  log: { level: 'info', dir: './logs' },
} as const;

/**
 * Errors a user can act on. Each has a stable `code` (tests assert on it, never on the
 * message) and a one-line message that names the cause.
 */
export class AfterError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AfterError';
    this.code = code;
  }
}

/** A config file or environment value that cannot be used. */
export class ConfigError extends AfterError {
  constructor(message: string) {
    super('E_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** Bad command-line usage or input (a missing file, malformed JSON...). */
export class UsageError extends AfterError {
  constructor(message: string) {
    super('E_USAGE', message);
    this.name = 'UsageError';
  }
}

/** A task document that cannot be run; `field` names what is wrong. */
export class TaskInvalidError extends AfterError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('E_TASK_INVALID', message);
    this.name = 'TaskInvalidError';
    this.field = field;
  }
}

/** A job name that does not resolve to a module inside the jobs folder. */
export class UnknownJobError extends AfterError {
  constructor(name: string) {
    super('E_UNKNOWN_JOB', `unknown job ${JSON.stringify(name)}`);
    this.name = 'UnknownJobError';
  }
}

/** A job that ran past its `timeout`. */
export class JobTimeoutError extends AfterError {
  constructor(timeoutMs: number) {
    super('E_TIMEOUT', `job timed out after ${timeoutMs} ms`);
    this.name = 'JobTimeoutError';
  }
}

/**
 * An HTTP request to CouchDB that failed. The URL in the message never carries credentials.
 * `status` is the HTTP status (undefined for a network error, whose `code` is e.g. ECONNREFUSED).
 */
export class CouchRequestError extends AfterError {
  readonly status: number | undefined;
  readonly reason: string | undefined;
  constructor(code: string, message: string, status?: number, reason?: string) {
    super(code, message);
    this.name = 'CouchRequestError';
    this.status = status;
    this.reason = reason;
  }
  /** Worth retrying: the database is away or overloaded, not refusing the request. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

/** Anything thrown, as an Error. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(JSON.stringify(thrown) ?? String(thrown));
  } catch {
    return new Error(String(thrown));
  }
}

/** `{message, code}` of anything thrown, as stored in a task's `error` field. */
export function toTaskError(thrown: unknown): { message: string; code?: string } {
  const err = toError(thrown);
  const code = (err as { code?: unknown }).code;
  const message = err.message || err.name || 'job failed';
  return typeof code === 'string' || typeof code === 'number' ? { message, code: String(code) } : { message };
}

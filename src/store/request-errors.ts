/**
 * Every failed request to the database becomes one CouchRequestError whose one-line message
 * names the cause and what to do, with the database URL scrubbed of credentials.
 */
import { CouchRequestError } from '../errors';
import { scrubSecrets } from '../log';

/** What is known about a failed request. */
export interface FailedRequest {
  method: string;
  /** The path requested, from the server root (`/tasks/_find`). */
  path: string;
  /** Server URL without credentials. */
  displayUrl: string;
  dbName: string;
  /** HTTP status; undefined when no response came. */
  status?: number;
  /** CouchDB's `error` field (`not_found`, `forbidden`, `conflict`...). */
  error?: string;
  /** CouchDB's `reason` field. */
  reason?: string;
  /** The socket error code (ECONNREFUSED...) or message when no response came. */
  networkCause?: string;
  aborted?: boolean;
}

/** Reasons CouchDB and pouchdb-server give when the database itself is missing. */
const MISSING_DB_REASONS = ['Database does not exist.', 'no_db_file'];

export function requestError(failed: FailedRequest): CouchRequestError {
  const { status, displayUrl } = failed;
  const reason = failed.reason !== undefined ? scrubSecrets(failed.reason) : undefined;
  const request = `${failed.method} ${failed.path}`;
  if (failed.aborted) {
    return new CouchRequestError('E_ABORTED', `${request} to CouchDB at ${displayUrl} was aborted`);
  }
  if (status === undefined) {
    const cause = scrubSecrets(failed.networkCause ?? 'no response');
    return new CouchRequestError(
      'E_DB_UNREACHABLE',
      `cannot reach CouchDB at ${displayUrl} (${cause}); start it with 'after db start' or set AFTER_COUCHDB_URL`,
    );
  }
  const statusText = `${status} ${failed.error ?? ''}`.trim();
  if (status === 401 || (status === 403 && failed.error !== 'forbidden')) {
    return new CouchRequestError(
      'E_DB_AUTH',
      `CouchDB at ${displayUrl} refused ${request} (${statusText}${reason ? `: ${reason}` : ''}); it needs other credentials: set couchdb.username/password or put them in AFTER_COUCHDB_URL`,
      status,
      reason,
    );
  }
  if (status === 403) {
    // validate_doc_update's `throw({forbidden: reason})`, or a database the user may not write
    return new CouchRequestError('E_FORBIDDEN', `CouchDB at ${displayUrl} refused ${request}: ${reason ?? 'forbidden'}`, status, reason);
  }
  if (status === 404 && reason !== undefined && MISSING_DB_REASONS.includes(reason)) {
    return new CouchRequestError('E_DB_MISSING', `database '${failed.dbName}' does not exist at ${displayUrl}; run 'after init'`, status, reason);
  }
  if (status === 409) {
    return new CouchRequestError('E_CONFLICT', `${request}: document update conflict`, status, reason);
  }
  const hint = failed.error === 'no_usable_index' ? "; run 'after init' to create the indexes" : '';
  return new CouchRequestError(
    'E_DB_HTTP',
    `CouchDB at ${displayUrl} answered ${statusText} to ${request}${reason ? `: ${reason}` : ''}${hint}`,
    status,
    reason,
  );
}

/** The socket error code of a failed fetch (`ECONNREFUSED`), else its message. */
export function networkCause(error: unknown): string {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ABORT_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  const message = error instanceof Error ? error.message : String(error);
  // nano flattens fetch's error into "error happened in your connection. Reason: Error: connect ECONNREFUSED ..."
  const code = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/.exec(message);
  return code ? code[1] : message.replace(/^error happened in your connection\. Reason: /, '');
}

/** The database itself is missing: `after init` has not made it (or it was deleted). */
export function isMissingDatabase(err: unknown): boolean {
  return err instanceof CouchRequestError && (err.code === 'E_DB_MISSING' || /database does not exist/i.test(err.reason ?? ''));
}

/** A 404 about the document (it does not exist, or is deleted), not about its database. */
export function isDocNotFound(err: unknown): boolean {
  return err instanceof CouchRequestError && err.status === 404 && !isMissingDatabase(err);
}

/** A 409: someone else wrote the document first. */
export function isConflict(err: unknown): boolean {
  return err instanceof CouchRequestError && err.status === 409;
}

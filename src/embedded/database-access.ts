/**
 * Who may use a database of the embedded server, decided the way Apache CouchDB 3 decides it
 * (couch_db:check_is_member): pure functions, tested as a table
 * (test/unit/embedded-database-access.test.ts) and against CouchDB itself
 * (test/integration/database-access.test.ts).
 *
 * Why the guard decides it and not express-pouchdb: express-pouchdb 4.2 hands pouchdb-security
 * no user for several routes (`_find`, `_explain`, `GET _index`, `_bulk_get`), and
 * pouchdb-security takes a call without a user for an internal one, with every right. So a
 * members-only database answered those routes to anyone (issue 19, row 1), and an anonymous
 * continuous `_changes` on it crashed the server (an unhandled rejection). The guard now checks
 * membership for every request to a database before express-pouchdb sees it.
 *
 * - A server admin may do anything.
 * - A database with no members (no names and no roles under `members`) is open to everyone the
 *   guard lets in: anonymous clients on loopback and every named user.
 * - Otherwise a user is in when their name or one of their roles is listed under `members` or
 *   `admins`; anyone else gets `401` when anonymous (credentials might help) and `403` when
 *   named (they will not), with CouchDB's own reasons.
 */
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';

/** A database's `_security` object, as stored (any shape: an admin wrote it). */
export interface SecurityObject {
  admins?: unknown;
  members?: unknown;
}

/** Who sent a request, once their password was checked. */
export type Requester = { kind: 'admin'; name: string } | { kind: 'user'; name: string; roles: readonly string[] } | { kind: 'anonymous' };

export interface Refusal {
  status: 401 | 403;
  error: 'unauthorized' | 'forbidden';
  reason: string;
}

/** CouchDB 3.4's answers, word for word (clients match on them). */
export const NOT_AUTHORIZED: Refusal = { status: 401, error: 'unauthorized', reason: 'You are not authorized to access this db.' };
export const NOT_ALLOWED: Refusal = { status: 403, error: 'forbidden', reason: 'You are not allowed to access this db.' };
export const WRONG_PASSWORD: Refusal = { status: 401, error: 'unauthorized', reason: 'Name or password is incorrect.' };

/** Why `requester` may not use a database secured by `security`, or null when they may. */
export function membershipRefusal(requester: Requester, security: SecurityObject | null): Refusal | null {
  if (requester.kind === 'admin') return null;
  const members = section(security?.members);
  if (members.names.length === 0 && members.roles.length === 0) return null;
  if (requester.kind === 'user' && (listed(requester, members) || listed(requester, section(security?.admins)))) return null;
  return requester.kind === 'anonymous' ? NOT_AUTHORIZED : NOT_ALLOWED;
}

/** Whether the database is restricted to its members. */
export function isMembersOnly(security: SecurityObject | null): boolean {
  const members = section(security?.members);
  return members.names.length > 0 || members.roles.length > 0;
}

function listed(user: { name: string; roles: readonly string[] }, within: { names: string[]; roles: string[] }): boolean {
  return within.names.includes(user.name) || user.roles.some((role) => within.roles.includes(role));
}

/** `{names, roles}` of a `_security` section, strings only (anything else lists nobody). */
function section(value: unknown): { names: string[]; roles: string[] } {
  const strings = (list: unknown): string[] => (Array.isArray(list) ? list.filter((item): item is string => typeof item === 'string') : []);
  const raw = typeof value === 'object' && value !== null ? (value as { names?: unknown; roles?: unknown }) : {};
  return { names: strings(raw.names), roles: strings(raw.roles) };
}

/** The fields of a `_users` document the password check reads. */
export interface UserDocument {
  name?: unknown;
  roles?: unknown;
  password_scheme?: unknown;
  derived_key?: unknown;
  salt?: unknown;
  iterations?: unknown;
}

/** pouchdb-auth's limit is none; a stored count this high is a mistake, not a hash to compute. */
const MAX_ITERATIONS = 1_000_000;

/**
 * The requester a `_users` document and a password make, or null when they do not match. The
 * check is pouchdb-auth's own (PBKDF2-HMAC-SHA1, 20 bytes, the salt as text), so the guard and
 * express-pouchdb, which checks again behind it, never disagree.
 */
export function userFromDocument(doc: UserDocument | null, name: string, password: string): Requester | null {
  if (doc === null || doc.name !== name || doc.password_scheme !== 'pbkdf2') return null;
  const { derived_key: keyHex, salt, iterations } = doc;
  if (typeof keyHex !== 'string' || !/^[\da-f]+$/i.test(keyHex) || typeof salt !== 'string') return null;
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) return null;
  const expected = Buffer.from(keyHex, 'hex');
  if (expected.length !== 20) return null;
  const actual = pbkdf2Sync(password, salt, iterations, 20, 'sha1');
  if (!timingSafeEqual(expected, actual)) return null;
  const roles = Array.isArray(doc.roles) ? doc.roles.filter((role): role is string => typeof role === 'string') : [];
  return { kind: 'user', name, roles };
}

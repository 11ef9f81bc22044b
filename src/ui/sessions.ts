/**
 * Sign-in with the database's own users: no user store of After's. A user signs in with the
 * name and password the database knows; from then on every request the dashboard makes for
 * them goes with their own credentials, so the database's `_security` decides what they read
 * (members read; a non-member is refused at sign-in). Acting on tasks takes a role of the
 * operator's choosing (`ui.operator_role`, default `after-operator`), a database admin
 * (named in its `_security.admins`) or a server admin (`_admin`).
 *
 * - CouchDB: `POST /_session` gives the dashboard an `AuthSession` cookie, which it keeps (and
 *   which CouchDB refreshes on later answers); the password is not kept.
 * - pouchdb-server: the embedded server refuses cookie sessions (a cookie in a browser would
 *   let any page the user visits write to it), and checks HTTP Basic credentials on each
 *   request: `GET /_session` with them says who they belong to, and the dashboard keeps them in
 *   its memory for the session's life, never on disk and never in the page.
 *
 * The browser gets only a random session id in an HttpOnly, SameSite=Strict cookie; a session
 * ends at sign-out or after `ui.session_idle_ms` unused.
 */
import { randomBytes } from 'node:crypto';
import type { AfterConfig } from '../config/types';
import { scrubUrl } from '../config/urls';
import { AfterError, CouchRequestError } from '../errors';
import type { Logger } from '../log';
import { openConnection, type Connection } from '../store/connection';
import type { ServerKind } from '../store/types';
import { dashboardConnection } from './dashboard-connection';

export const SESSION_COOKIE = 'after_session';

export interface DashboardUser {
  /** null: nobody signed in (a loopback dashboard without --login). */
  name: string | null;
  roles: string[];
  /** May act on tasks and workers (see the header). */
  canAct: boolean;
}

export interface Session {
  id: string;
  user: DashboardUser;
  /** The user's own connection, narrowed like the dashboard's (dashboard-connection.ts). */
  conn: Connection;
  lastUsedMs: number;
}

export interface SessionsOptions {
  config: AfterConfig;
  kind: ServerKind;
  log: Logger;
}

/** Failed sign-ins allowed per address in a minute, so a password cannot be guessed at speed. */
const FAILURES_PER_MINUTE = 10;

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly options: SessionsOptions) {}

  async signIn(name: string, password: string, from: string): Promise<Session> {
    this.checkRate(from);
    if (name === '' || password === '') throw new AfterError('E_SIGN_IN', 'give a user name and a password');
    const { config, kind } = this.options;
    const plainUrl = scrubUrl(config.couchdb.url);
    const basic = kind !== 'couchdb';
    const raw = openConnection(
      { ...config, couchdb: { ...config.couchdb, url: plainUrl, username: basic ? name : '', password: basic ? password : '' } },
      { log: this.options.log },
    );
    try {
      const userCtx = basic ? await this.checkBasic(raw) : await this.postSession(raw, name, password);
      if (userCtx.name !== name) throw this.refused(from, 'the name or the password is wrong');
      await this.checkMember(raw, name);
      const roles = userCtx.roles.filter((role): role is string => typeof role === 'string');
      const canAct = roles.includes('_admin') || roles.includes(config.ui.operator_role) || (await this.isDatabaseAdmin(raw, name, roles));
      const session: Session = { id: randomBytes(32).toString('base64url'), user: { name, roles, canAct }, conn: dashboardConnection(raw), lastUsedMs: Date.now() };
      this.sessions.set(session.id, session);
      this.options.log.info(`dashboard: ${name} signed in${canAct ? '' : ' (reads only)'}`);
      return session;
    } catch (err) {
      raw.close();
      if (err instanceof CouchRequestError && (err.status === 401 || err.status === 403)) throw this.refused(from, 'the name or the password is wrong');
      throw err;
    }
  }

  /** The live session a request's cookie names, touched; undefined when none or expired. */
  get(cookieHeader: string | undefined): Session | undefined {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return undefined;
    if (Date.now() - session.lastUsedMs > this.options.config.ui.session_idle_ms) {
      this.end(session.id);
      return undefined;
    }
    session.lastUsedMs = Date.now();
    return session;
  }

  end(id: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    session.conn.close();
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.end(id);
  }

  /** CouchDB: `POST /_session`; the cookie it sets stays in the connection's jar. */
  private async postSession(conn: Connection, name: string, password: string): Promise<{ name: string | null; roles: unknown[] }> {
    const res = await conn.request<{ name?: string | null; roles?: unknown[] }>({ method: 'POST', root: true, path: '_session', body: { name, password } });
    return { name: res.body.name ?? null, roles: res.body.roles ?? [] };
  }

  /** pouchdb-server: `GET /_session` with the Basic credentials answers whose they are. */
  private async checkBasic(conn: Connection): Promise<{ name: string | null; roles: unknown[] }> {
    const res = await conn.request<{ userCtx?: { name?: string | null; roles?: unknown[] } }>({ root: true, path: '_session' });
    return { name: res.body.userCtx?.name ?? null, roles: res.body.userCtx?.roles ?? [] };
  }

  /** A member (or admin) may read the tasks database; anyone else is refused here, not later. */
  private async checkMember(conn: Connection, name: string): Promise<void> {
    try {
      await conn.request({ path: '' });
    } catch (err) {
      if (err instanceof CouchRequestError && (err.status === 401 || err.status === 403)) {
        throw new AfterError('E_NOT_MEMBER', `${name} may not read the database ${conn.dbName} (not in its _security members); ask its admin`);
      }
      throw err;
    }
  }

  /** Named (or by a role) in the database's `_security.admins`; false when the user may not read `_security`. */
  private async isDatabaseAdmin(conn: Connection, name: string, roles: string[]): Promise<boolean> {
    try {
      const security = (await conn.request<{ admins?: { names?: unknown[]; roles?: unknown[] } }>({ path: '_security' })).body;
      return (security.admins?.names ?? []).includes(name) || (security.admins?.roles ?? []).some((role) => roles.includes(role as string));
    } catch {
      return false;
    }
  }

  private checkRate(from: string): void {
    const now = Date.now();
    const recent = (this.failures.get(from) ?? []).filter((at) => now - at < 60_000);
    this.failures.set(from, recent);
    if (recent.length >= FAILURES_PER_MINUTE) throw new AfterError('E_SIGN_IN_LIMIT', 'too many failed sign-ins from this address; wait a minute');
  }

  private refused(from: string, why: string): AfterError {
    this.failures.set(from, [...(this.failures.get(from) ?? []), Date.now()]);
    return new AfterError('E_SIGN_IN', why);
  }
}

/** The value of cookie `name` in a `Cookie` header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** The `Set-Cookie` of a session (empty id: the cookie removed). */
export function sessionCookie(id: string, maxAgeS: number): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${id === '' ? 0 : maxAgeS}`;
}

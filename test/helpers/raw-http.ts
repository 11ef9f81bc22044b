/**
 * Requests with exactly the credentials and headers a test chooses, one connection each (a
 * feed a test leaves open must not leak bytes into the next answer), and the users of a server
 * (`_users`) as CouchDB and the embedded server keep them.
 */
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import * as http from 'node:http';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON when the answer is JSON; the text otherwise; undefined for a stream left unread. */
  body: any;
  /** How long the answer took to its end (to its headers for a stream). */
  ms: number;
}

export interface RawRequest {
  /** `[name, password]` sent as HTTP Basic; none: anonymous. */
  auth?: readonly [string, string];
  body?: unknown;
  headers?: Record<string, string>;
  /** A feed that does not end by itself: resolve on the status, then close the connection. */
  stream?: boolean;
  timeoutMs?: number;
}

/** One request to `origin` (`http://127.0.0.1:5984`, no credentials in it). */
export function sendRaw(origin: string, method: string, path: string, options: RawRequest = {}): Promise<RawAnswer> {
  const target = new URL(origin);
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string | number> = { accept: 'application/json', ...options.headers };
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  if (options.auth) headers.authorization = `Basic ${Buffer.from(`${options.auth[0]}:${options.auth[1]}`).toString('base64')}`;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path, method, headers, agent: false }, (res) => {
      if (options.stream && (res.statusCode ?? 0) < 400) {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: undefined, ms: Date.now() - started });
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started });
      });
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** `http://user:pw@host:port` → the origin and the credentials. */
export function splitUrl(url: string): { origin: string; auth?: [string, string] } {
  const parsed = new URL(url);
  const auth: [string, string] | undefined = parsed.username ? [decodeURIComponent(parsed.username), decodeURIComponent(parsed.password)] : undefined;
  return { origin: parsed.origin, ...(auth && { auth }) };
}

/**
 * Adds a user to the server's `_users` database as its admin. On CouchDB the password is stored
 * already hashed with 10 PBKDF2 rounds: CouchDB 3.4 hashes a `password` with 600,000, and every
 * request with a wrong one would pay them again. The embedded server hashes it itself (10
 * rounds, pouchdb-auth). Returns a function that removes the user.
 */
export async function createUser(
  server: { kind: 'embedded' | 'couchdb'; adminUrl: string },
  user: { name: string; password: string; roles?: string[] },
): Promise<() => Promise<void>> {
  const { origin, auth } = splitUrl(server.adminUrl);
  const path = `/_users/${encodeURIComponent(`org.couchdb.user:${user.name}`)}`;
  const base = { name: user.name, roles: user.roles ?? [], type: 'user' };
  let doc: Record<string, unknown> = { ...base, password: user.password };
  if (server.kind === 'couchdb') {
    const salt = randomBytes(16).toString('hex');
    const derivedKey = pbkdf2Sync(user.password, salt, 10, 32, 'sha256').toString('hex');
    doc = { ...base, password_scheme: 'pbkdf2', pbkdf2_prf: 'sha256', iterations: 10, salt, derived_key: derivedKey };
  }
  const created = await sendRaw(origin, 'PUT', path, { ...(auth && { auth }), body: doc });
  if (created.status !== 201 && created.status !== 202) throw new Error(`cannot create user ${user.name}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  return async () => {
    const current = await sendRaw(origin, 'GET', path, { ...(auth && { auth }) });
    if (current.status === 200) await sendRaw(origin, 'DELETE', `${path}?rev=${current.body._rev}`, { ...(auth && { auth }) });
  };
}

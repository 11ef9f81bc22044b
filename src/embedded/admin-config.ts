/**
 * How the CLI acts as the embedded server's admin without the user typing a password: for the
 * commands that need admin (`after init`, `after purge`), when the configured database IS the
 * embedded server started from this AFTER_HOME. Everything else (workers, `after task`,
 * `after status`, the dashboard) connects with what is configured: anonymously on loopback.
 */
import type { AfterConfig } from '../config/types';
import { AfterError } from '../errors';
import { adminFile, readAdminCredentials } from './admin-credentials';
import { runningEmbeddedServer } from './server';

/**
 * The configuration with the embedded admin's credentials merged in, or `config` unchanged:
 * - a `couchdb.username`, a `couchdb.password` or credentials in the URL always win;
 * - otherwise the credentials are added only when the server started from `config.home`
 *   runs (per `db.pid`/`db.json`) and the configured URL has its origin (the URL it printed,
 *   or `http://<embedded.host>:<port>` it was bound with), so they never go to another server.
 */
export function withEmbeddedAdmin(config: AfterConfig): AfterConfig {
  const couch = config.couchdb;
  if (couch.username || couch.password) return config;
  let configured: URL;
  try {
    configured = new URL(couch.url);
  } catch {
    return config;
  }
  if (configured.username || configured.password || configured.pathname.replace(/\/+$/, '') !== '') return config;
  const server = runningEmbeddedServer(config.home);
  if (!server) return config;
  const bound = `http://${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  if (![server.url, bound].some((candidate) => sameOrigin(candidate, configured))) return config;
  const admin = readAdminCredentials(config.home);
  // A pouchdb-server started by an older After has no admin (anyone may): nothing to add.
  if (!admin && !server.locked) return config;
  if (!admin) {
    throw new AfterError(
      'E_DB_ADMIN',
      `the embedded server at ${server.url} needs its admin, but ${adminFile(config.home)} is missing; restart it ('after db stop', then 'after db start') to create a new admin`,
    );
  }
  return Object.freeze({ ...config, couchdb: Object.freeze({ ...couch, username: admin.name, password: admin.password }) });
}

function sameOrigin(candidate: string, configured: URL): boolean {
  try {
    return new URL(candidate).origin === configured.origin;
  } catch {
    return false;
  }
}

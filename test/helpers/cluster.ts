/**
 * A test database on a CouchDB cluster (COUCHDB_CLUSTER_URLS: one URL per node, as
 * `couchdb.sh cluster start` prints them): the same database seen through each node, so
 * instances of one worker can each talk to a different node (docs/spec.md §7 "Claims in a cluster").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './cli';
import { databaseRequest, type TestDb } from './db';
import { isAlive } from './processes';

/** The node URLs from COUCHDB_CLUSTER_URLS, or undefined when it is unset or empty. */
export function clusterUrls(): string[] | undefined {
  const urls = (process.env.COUCHDB_CLUSTER_URLS ?? '').split(/\s+/).filter(Boolean);
  return urls.length > 0 ? urls.map((url) => url.replace(/\/+$/, '')) : undefined;
}

/**
 * `db` as seen through another node of its cluster: `env` (what `after` children get) and
 * `request` go to `url`; everything else (name, home, config file, destroy) is `db`'s.
 */
export function onNode(db: TestDb, url: string): TestDb {
  return { ...db, url, env: { ...db.env, AFTER_COUCHDB_URL: url }, request: databaseRequest(url, db.dbName) };
}

/** Runs `fn` over `items`, at most `width` at a time; results in the order of `items`. */
export async function mapLimited<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!);
      }
    }),
  );
  return results;
}

/** The shared couchdb.sh that started the cluster (COUCHDB_SCRIPT, or ../shared beside the repository). */
export function clusterScript(): string | undefined {
  const script = process.env.COUCHDB_SCRIPT ?? path.resolve(REPO_ROOT, '..', 'shared', 'couchdb', 'couchdb.sh');
  return fs.existsSync(script) ? script : undefined;
}

/** Where couchdb.sh keeps the cluster (its COUCHDB_HOME default). */
export function clusterHome(): string {
  return path.join(process.env.COUCHDB_HOME ?? path.join(process.env.TMPDIR ?? os.tmpdir(), 'after-couchdb'), 'cluster');
}

/** The pid of node `n` (1-based) as couchdb.sh recorded it, when it runs. */
export function nodePid(n: number): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(clusterHome(), `node${n}`, 'couchdb.pid'), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

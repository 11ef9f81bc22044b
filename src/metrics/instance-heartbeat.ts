/**
 * Live worker instances: each running instance keeps one document about itself in the
 * database `<tasks db>_instances`, rewritten every HEARTBEAT_INTERVAL_MS and deleted when it
 * stops cleanly. `after status` and the dashboard list the instances whose last heartbeat is
 * recent (within STALE_AFTER_BEATS intervals, by the database's clock) as live.
 *
 * Why a database of its own: `_local` documents never appear in `_changes` or `_all_docs`, and
 * heartbeats in the tasks database would wake every worker's feed every few seconds and add to
 * the indexes the workers query. `after init` creates it; a worker creates it on first use when
 * it may (a 412 means it exists). Where it may not (the embedded server refuses database
 * creation without its admin, as CouchDB does), the worker says once to run `after init`.
 */
import * as os from 'node:os';
import { CouchRequestError, toError } from '../errors';
import { silentLogger, type Logger } from '../log';
import type { Connection } from '../store/connection';

/** How often an instance rewrites its document. @default 10000 */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** An instance silent for this many of its intervals is no longer live (a crash, a kill -9). */
export const STALE_AFTER_BEATS = 3;

/** What an instance reports about itself; `Worker` has all of it. */
export interface InstanceSource {
  readonly name: string;
  readonly instance: string;
  readonly heldCount: number;
  readonly runningCount: number;
}

export interface InstanceDoc {
  _id: string;
  _rev?: string;
  worker: string;
  instance: string;
  host: string;
  pid: number;
  /** ISO 8601, database clock. */
  started_at: string;
  heartbeat_at: string;
  interval_ms: number;
  running: number;
  held: number;
}

export interface InstanceView extends Omit<InstanceDoc, '_id' | '_rev'> {
  /** Heartbeat within STALE_AFTER_BEATS intervals of the database's time now. */
  live: boolean;
  /** Milliseconds since the last heartbeat, by the database's clock. */
  age_ms: number;
}

export interface InstanceHeartbeat {
  /** Stop beating and delete the instance's document (best effort: a stale one ages out anyway). */
  stop(): Promise<void>;
}

export function instancesDbName(tasksDb: string): string {
  return `${tasksDb}_instances`;
}

/** Start writing `source`'s heartbeat document now and every `intervalMs`. */
export function startInstanceHeartbeat(
  conn: Connection,
  source: InstanceSource,
  options: { intervalMs?: number; log?: Logger; pid?: number } = {},
): InstanceHeartbeat {
  const intervalMs = options.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const log = options.log ?? silentLogger();
  const id = `${source.name}:${source.instance}`;
  const startedAt = iso(conn.clock.dbNow());
  let rev: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failing = false;
  // A stop must never wait on a hung database: it aborts the beat in flight.
  const stopping = new AbortController();
  let beating: Promise<void> = Promise.resolve();

  const doc = (): InstanceDoc => ({
    _id: id,
    ...(rev ? { _rev: rev } : {}),
    worker: source.name,
    instance: source.instance,
    host: os.hostname(),
    pid: options.pid ?? process.pid,
    started_at: startedAt,
    heartbeat_at: iso(conn.clock.dbNow()),
    interval_ms: intervalMs,
    running: source.runningCount,
    held: source.heldCount,
  });

  async function beat(): Promise<void> {
    try {
      rev = await putInstance(conn, doc(), stopping.signal);
      if (failing) log.info(`instance heartbeat written again to ${instancesDbName(conn.dbName)}`);
      failing = false;
    } catch (err) {
      if (stopping.signal.aborted) return;
      // The worker keeps running without it; only `after status` and the dashboard lose sight of it.
      if (!failing) {
        if (err instanceof InstancesDbRefused) {
          log.warn(`instance heartbeat not written: database ${instancesDbName(conn.dbName)} does not exist and this worker may not create it; run 'after init' (retrying every ${intervalMs} ms)`);
        } else {
          log.warn(`instance heartbeat not written (${toError(err).message}); retrying every ${intervalMs} ms`);
        }
      }
      failing = true;
    }
  }

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      beating = beat().then(schedule);
    }, intervalMs);
    timer.unref();
  };
  beating = beat().then(schedule);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      stopping.abort();
      await beating;
      if (rev === undefined) return;
      try {
        await deleteInstance(conn, id, rev, AbortSignal.timeout(STOP_TIMEOUT_MS));
      } catch (err) {
        log.warn(`instance document ${id} not deleted (${toError(err).message}); it will show as not live`);
      }
    },
  };
}

/** How long a stop may spend deleting the instance's document. */
const STOP_TIMEOUT_MS = 3000;

/** Write the document, creating the database on first use and riding over a 409 from a lost rev. */
async function putInstance(conn: Connection, doc: InstanceDoc, signal: AbortSignal): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await conn.request<{ rev: string }>({ method: 'PUT', root: true, path: instancePath(conn, doc._id), body: doc, signal });
      return res.body.rev;
    } catch (err) {
      if (!(err instanceof CouchRequestError) || attempt >= 3) throw err;
      if (err.status === 404) {
        try {
          await ensureInstancesDb(conn, signal);
        } catch (createErr) {
          const refused = createErr instanceof CouchRequestError && (createErr.status === 401 || createErr.status === 403);
          throw refused ? new InstancesDbRefused(createErr) : createErr;
        }
      } else if (err.status === 409) {
        // Our last write's answer was lost (or a database restore): take the stored rev.
        doc._rev = (await readInstance(conn, doc._id, signal))?._rev;
      } else {
        throw err;
      }
    }
  }
}

/** Delete with `rev`; a 409 (a beat aborted by the stop may have landed) retries with the stored rev. */
async function deleteInstance(conn: Connection, id: string, rev: string, signal: AbortSignal): Promise<void> {
  try {
    await conn.request({ method: 'DELETE', root: true, path: instancePath(conn, id), qs: { rev }, signal });
  } catch (err) {
    if (!(err instanceof CouchRequestError && err.status === 409)) throw err;
    const stored = await readInstance(conn, id, signal);
    if (stored?._rev) await conn.request({ method: 'DELETE', root: true, path: instancePath(conn, id), qs: { rev: stored._rev }, signal });
  }
}

async function readInstance(conn: Connection, id: string, signal?: AbortSignal): Promise<InstanceDoc | null> {
  try {
    return (await conn.request<InstanceDoc>({ root: true, path: instancePath(conn, id), signal })).body;
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404) return null;
    throw err;
  }
}

/** Revisions CouchDB keeps per instance document: each heartbeat is one, and none is ever read. */
const INSTANCES_REVS_LIMIT = 10;

/** The instances database could not be created for lack of rights (a 401 or 403). */
class InstancesDbRefused extends Error {
  constructor(cause: unknown) {
    super('not allowed to create the instances database', { cause });
  }
}

/** Create `<db>_instances`; 412 (it exists) is success. Resolves with whether it was created. */
export async function ensureInstancesDb(conn: Connection, signal?: AbortSignal): Promise<boolean> {
  const db = encodeURIComponent(instancesDbName(conn.dbName));
  try {
    await conn.request({ method: 'PUT', root: true, path: db, signal });
  } catch (err) {
    if (!(err instanceof CouchRequestError && err.status === 412)) throw err;
    return false;
  }
  // pouchdb-server 4.2 has no _revs_limit endpoint (a 400/404): nothing to save there.
  await conn.request({ method: 'PUT', root: true, path: `${db}/_revs_limit`, body: INSTANCES_REVS_LIMIT, signal }).catch(() => undefined);
  return true;
}

/**
 * Every instance document, newest heartbeat first, each marked live or not by the database's
 * clock. A missing instances database means no instance ever started: an empty list.
 */
export async function listInstances(conn: Connection): Promise<InstanceView[]> {
  let rows: Array<{ doc?: InstanceDoc }>;
  try {
    const res = await conn.request<{ rows: Array<{ doc?: InstanceDoc }> }>({
      root: true,
      path: `${encodeURIComponent(instancesDbName(conn.dbName))}/_all_docs`,
      qs: { include_docs: true },
    });
    rows = res.body.rows;
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404) return [];
    throw err;
  }
  // Read after the request: its Date header has just refined the database clock.
  const nowMs = conn.clock.dbNow();
  return rows
    .map((row) => row.doc)
    .filter((doc): doc is InstanceDoc => isInstanceDoc(doc))
    .map(({ _id: _ignoredId, _rev: _ignoredRev, ...doc }) => {
      const ageMs = Math.max(0, nowMs - Date.parse(doc.heartbeat_at));
      const intervalMs = doc.interval_ms > 0 ? doc.interval_ms : HEARTBEAT_INTERVAL_MS;
      return { ...doc, live: ageMs < STALE_AFTER_BEATS * intervalMs, age_ms: ageMs };
    })
    .sort((a, b) => b.heartbeat_at.localeCompare(a.heartbeat_at));
}

function isInstanceDoc(doc: unknown): doc is InstanceDoc {
  const d = doc as Partial<InstanceDoc> | undefined;
  return typeof d === 'object' && d !== null && typeof d.worker === 'string' && typeof d.instance === 'string' && typeof d.heartbeat_at === 'string';
}

function instancePath(conn: Connection, id: string): string {
  return `${encodeURIComponent(instancesDbName(conn.dbName))}/${encodeURIComponent(id)}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

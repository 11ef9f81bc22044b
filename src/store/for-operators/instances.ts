/**
 * Live worker instances as `after status` and the dashboard show them: each running instance
 * keeps one document about itself in the control database `<tasks db>_control`
 * (`instance:<worker>:<instance>`, written by the worker's control link every 10 s and deleted
 * when it stops cleanly). An instance whose last heartbeat is older than STALE_AFTER_BEATS of its
 * intervals, by the database's clock, is not live (a crash, a kill -9). One whose heartbeat is
 * dated further ahead than the workers believe (membership.ts) is shown as suspect, never live:
 * the workers ignore it too.
 */
import { CouchRequestError } from '../../errors';
import type { Connection } from '../connection';
import { believedIntervalMs, DEFAULT_INSTANCE_HEARTBEAT_MS, INSTANCE_PREFIX, isFutureHeartbeat, PAUSE_PREFIX, STALE_AFTER_BEATS, controlDbName, isPausing, type InstanceDoc } from '../schema';

export interface InstanceView extends Omit<InstanceDoc, '_id' | '_rev' | 'type'> {
  /** Heartbeat within STALE_AFTER_BEATS intervals of the database's time now (and not dated ahead). */
  live: boolean;
  /** Milliseconds since the last heartbeat, by the database's clock (0 for one dated ahead). */
  age_ms: number;
  /**
   * The heartbeat is dated more than HEARTBEAT_FUTURE_TOLERANCE_MS ahead of the database's clock:
   * a clock far off or a forged document, which no worker counts as live.
   */
  suspect: boolean;
}

export interface WorkersView {
  instances: InstanceView[];
  /** Worker names paused with a `pause:<worker>` document. */
  paused: string[];
}

/**
 * Every instance document, newest heartbeat first, each marked live or not by the database's
 * clock, and the paused worker names. A missing control database means `after init` has not
 * made it: nothing to show.
 */
export async function readWorkers(conn: Connection): Promise<WorkersView> {
  let rows: Array<{ id: string; doc?: Record<string, unknown> }>;
  try {
    const res = await conn.request<{ rows: Array<{ id: string; doc?: Record<string, unknown> }> }>({
      db: controlDbName(conn.dbName),
      path: '_all_docs',
      qs: { include_docs: true },
    });
    rows = res.body.rows;
  } catch (err) {
    // A 404 on `_all_docs`: the control database is missing.
    if (err instanceof CouchRequestError && err.status === 404) return { instances: [], paused: [] };
    throw err;
  }
  // Read after the request: its Date header has just refined the database clock.
  const nowMs = conn.clock.dbNow();
  const instances = rows
    .filter((row) => row.id.startsWith(INSTANCE_PREFIX))
    .map((row): unknown => row.doc)
    .filter((doc): doc is InstanceDoc => isInstanceDoc(doc))
    .map(({ _id: _ignoredId, _rev: _ignoredRev, type: _type, ...doc }) => {
      const heartbeatMs = Date.parse(doc.heartbeat_at);
      const suspect = isFutureHeartbeat(heartbeatMs, nowMs);
      const ageMs = Math.max(0, nowMs - heartbeatMs);
      const intervalMs = believedIntervalMs(doc.interval_ms, DEFAULT_INSTANCE_HEARTBEAT_MS);
      return { ...doc, live: !suspect && ageMs < STALE_AFTER_BEATS * intervalMs, age_ms: ageMs, suspect };
    })
    .sort((a, b) => b.heartbeat_at.localeCompare(a.heartbeat_at));
  const paused = rows
    .filter((row) => row.id.startsWith(PAUSE_PREFIX) && isPausing(row.doc as { _id: string } | undefined))
    .map((row) => row.id.slice(PAUSE_PREFIX.length))
    .sort();
  return { instances, paused };
}

/** The instances alone (see readWorkers). */
export async function listInstances(conn: Connection): Promise<InstanceView[]> {
  return (await readWorkers(conn)).instances;
}

function isInstanceDoc(doc: unknown): doc is InstanceDoc {
  const d = doc as Partial<InstanceDoc> | undefined;
  return typeof d === 'object' && d !== null && typeof d.worker === 'string' && typeof d.instance === 'string' && typeof d.heartbeat_at === 'string';
}

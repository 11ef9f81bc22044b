/**
 * The run figures database `<tasks db>_stats`, beside the tasks and control databases, created
 * by `after init`. Why a database of its own: a worker's `_changes` feed follows the tasks
 * database, and every instance reads the control database whole at start, so figures written
 * into either would cost every worker; here they cost only who reads them.
 *
 * One document per instance and hour (`runs:<hour>:<worker>:<instance>`, hour = `2026-12-07T14`,
 * UTC), rewritten by its instance at most once a minute (metrics/run-stats-recorder.ts):
 * - `slots`: the hour's 10-second slots that saw a run end or start, each a run-figures vector
 *   (stats/run-figures.ts): the realtime chart reads the last ten minutes' documents whole;
 * - `total`: the hour's sum, which the `by_hour` view adds up with the built-in `_sum` over
 *   instances, hours and days: the history charts (hourly for 7 days, daily for 90).
 * Instance ids are new at every start, so no two processes ever write the same document, and a
 * restarted instance's figures add to its predecessor's.
 */
import { docPath, type Connection } from './connection';

export function statsDbName(tasksDb: string): string {
  return `${tasksDb}_stats`;
}

export const RUNS_PREFIX = 'runs:';
export const STATS_DESIGN_ID = '_design/after-runs';
/** `_design/after-runs/_view/by_hour?group_level=3`: [worker, day, hour] → summed vector; worker '' = every worker. */
export const BY_HOUR_VIEW = '_design/after-runs/_view/by_hour';
/** Seconds per slot of a document's `slots`. */
export const SLOT_MS = 10_000;
export const SLOTS_PER_HOUR = 3_600_000 / SLOT_MS;
/** Documents older than this are deleted by the recorders. */
export const DEFAULT_RETENTION_DAYS = 90;

export interface RunsDoc {
  _id: string;
  _rev?: string;
  type: 'runs';
  worker: string;
  instance: string;
  /** `YYYY-MM-DDTHH`, UTC. */
  hour: string;
  total: number[];
  /** Slot index in the hour (0-359) → vector. */
  slots: Record<string, number[]>;
}

/** The last hour's key and where it starts and ends: a recorder asks for it at every run's start and end. */
let lastHour = { startMs: 0, endMs: 0, key: '' };

/** `2026-12-07T14` for an instant (UTC). */
export function hourKey(ms: number): string {
  if (ms >= lastHour.startMs && ms < lastHour.endMs) return lastHour.key;
  const startMs = Math.floor(ms / 3_600_000) * 3_600_000;
  lastHour = { startMs, endMs: startMs + 3_600_000, key: new Date(startMs).toISOString().slice(0, 13) };
  return lastHour.key;
}

export function hourStartMs(hour: string): number {
  return Date.parse(`${hour}:00:00.000Z`);
}

export function runsDocId(hour: string, worker: string, instance: string): string {
  return `${RUNS_PREFIX}${hour}:${worker}:${instance}`;
}

/**
 * The history view: one row per document, keyed [worker, day, hour] and ['', day, hour] for the
 * sum over every worker name (a worker name is never empty). `_sum` adds the vectors.
 */
export const STATS_DESIGN_BODY = {
  language: 'javascript',
  views: {
    by_hour: {
      map:
        "function (doc) { if (doc.type !== 'runs' || typeof doc.worker !== 'string' || typeof doc.hour !== 'string' || !Array.isArray(doc.total)) { return; } " +
        'var day = doc.hour.slice(0, 10); var hour = doc.hour.slice(11, 13); ' +
        "emit([doc.worker, day, hour], doc.total); emit(['', day, hour], doc.total); }",
      reduce: '_sum',
    },
  },
};

/** The request that writes one document of the stats database. */
export function putRunsDoc(conn: Connection, doc: RunsDoc): Promise<{ body: { rev: string } }> {
  return conn.request<{ rev: string }>({ method: 'PUT', db: statsDbName(conn.dbName), path: docPath(doc._id), body: doc });
}

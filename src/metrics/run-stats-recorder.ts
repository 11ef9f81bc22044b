/**
 * Records a worker instance's run figures (runs done, failed and retried, start lateness) into
 * the stats database `<db>_stats` for the dashboard's charts, `after status` and the library
 * API. A sidecar, like the Prometheus metrics: it listens to the worker's events and never sits
 * on a task's path.
 *
 * Cost to the database: at most one write a minute (two at the turn of an hour), none while the
 * instance runs nothing. The instance's document of the hour (store/run-stats-db.ts) is kept in
 * memory whole and written whole, so a lost answer or a retried write never counts a run twice;
 * only this instance writes it (its id carries the instance id). A clean stop writes what is
 * left; a crash loses at most the last minute.
 */
import type { SafeEmitter } from '../events';
import type { Logger } from '../log';
import { docPath, type Connection } from '../store/connection';
import { isConflict, isMissingDatabase } from '../store/request-errors';
import { DEFAULT_RETENTION_DAYS, hourKey, putRunsDoc, RUNS_PREFIX, runsDocId, SLOT_MS, statsDbName, type RunsDoc } from '../store/run-stats-db';
import { countRunEnd, countStart, emptyVector, runEndOf } from '../stats/run-figures';
import type { WorkerEvents } from '../worker/events';

/** What the recorder reads from a worker. */
export interface RecordedWorker {
  readonly name: string;
  readonly instance: string;
  readonly events: SafeEmitter<WorkerEvents>;
}

export interface RunStatsRecorderOptions {
  conn: Connection;
  log: Logger;
  /** The database's time now (epoch ms): instances on several machines count in the same slots. */
  now?: () => number;
  /** @default 60000 */
  flushEveryMs?: number;
  /** @default 90 */
  retentionDays?: number;
}

export interface RunStatsRecorder {
  /** Write what is not written yet (at most one write per hour with news). */
  flush(): Promise<void>;
  /** Stop listening, write what is left. */
  stop(): Promise<void>;
}

const DEFAULT_FLUSH_MS = 60_000;
const PRUNE_EVERY_MS = 6 * 3_600_000;
const PRUNE_BATCH = 200;

export function startRunStatsRecorder(worker: RecordedWorker, options: RunStatsRecorderOptions): RunStatsRecorder {
  const { conn, log } = options;
  const now = options.now ?? (() => conn.clock.dbNow());
  const retentionMs = (options.retentionDays ?? DEFAULT_RETENTION_DAYS) * 86_400_000;
  /** This instance's documents with news not written yet, by hour. */
  const docs = new Map<string, RunsDoc>();
  const dirty = new Set<string>();
  let disabled = false;
  let flushing: Promise<void> | undefined;
  let lastPruneMs = 0;

  function docOf(ms: number): RunsDoc {
    const hour = hourKey(ms);
    let doc = docs.get(hour);
    if (!doc) {
      doc = { _id: runsDocId(hour, worker.name, worker.instance), type: 'runs', worker: worker.name, instance: worker.instance, hour, total: emptyVector(), slots: {} };
      docs.set(hour, doc);
    }
    dirty.add(hour);
    return doc;
  }

  function count(change: (vector: number[]) => void): void {
    if (disabled) return;
    const at = now();
    const doc = docOf(at);
    const slot = String(Math.floor((at % 3_600_000) / SLOT_MS));
    change(doc.total);
    change((doc.slots[slot] ??= emptyVector()));
  }

  const offs = [
    worker.events.on('task:started', (e) => count((vector) => countStart(vector, e.lateMs))),
    worker.events.on('task:finished', (e) => {
      const end = runEndOf(e);
      if (end) count((vector) => countRunEnd(vector, end));
    }),
  ];

  async function write(hour: string): Promise<void> {
    const doc = docs.get(hour)!;
    dirty.delete(hour);
    try {
      doc._rev = (await putRunsDoc(conn, doc)).body.rev;
    } catch (err) {
      if (isConflict(err)) {
        // Our own earlier write whose answer was lost: what we hold already includes it.
        const stored = await conn.request<{ _rev: string }>({ db: statsDbName(conn.dbName), path: docPath(doc._id) });
        doc._rev = stored.body._rev;
        doc._rev = (await putRunsDoc(conn, doc)).body.rev;
        return;
      }
      dirty.add(hour);
      throw err;
    }
  }

  async function flushNow(): Promise<void> {
    for (const hour of [...dirty].sort()) {
      try {
        await write(hour);
      } catch (err) {
        if (isMissingDatabase(err)) {
          disabled = true;
          log.warn(`run figures are not recorded: the database ${statsDbName(conn.dbName)} is missing; run 'after init' to create it`);
          return;
        }
        log.debug(`run figures of ${worker.name} not written this minute (${(err as Error).message}); trying again next minute`);
        return;
      }
    }
    // Keep only the hour in progress: older ones are written and will get no news.
    const current = hourKey(now());
    for (const hour of docs.keys()) if (hour < current && !dirty.has(hour)) docs.delete(hour);
    if (now() - lastPruneMs > PRUNE_EVERY_MS) {
      lastPruneMs = now();
      await prune().catch((err: Error) => log.debug(`old run figures not pruned: ${err.message}`));
    }
  }

  /** Delete documents past the retention (any instance may; a 409 means another did). */
  async function prune(): Promise<void> {
    const cutoff = hourKey(now() - retentionMs);
    const res = await conn.request<{ rows: Array<{ id: string; value: { rev: string } }> }>({
      db: statsDbName(conn.dbName),
      path: '_all_docs',
      qs: { startkey: RUNS_PREFIX, endkey: `${RUNS_PREFIX}${cutoff}`, limit: PRUNE_BATCH },
    });
    const old = res.body.rows.map((row) => ({ _id: row.id, _rev: row.value.rev, _deleted: true }));
    if (old.length > 0) await conn.request({ method: 'POST', db: statsDbName(conn.dbName), path: '_bulk_docs', body: { docs: old } });
  }

  function flush(): Promise<void> {
    if (disabled || dirty.size === 0) return flushing ?? Promise.resolve();
    flushing ??= flushNow().finally(() => (flushing = undefined));
    return flushing;
  }

  const timer = setInterval(() => void flush(), options.flushEveryMs ?? DEFAULT_FLUSH_MS);
  timer.unref();

  return {
    flush,
    async stop() {
      clearInterval(timer);
      for (const off of offs) off();
      await flushing;
      await flush();
    },
  };
}

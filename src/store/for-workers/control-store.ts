/**
 * The control database `<tasks db>_control` over CouchDB or pouchdb-server: instance heartbeats,
 * paused worker names and users' requests about tasks (store/types.ts `ControlDoc`). It is
 * small (a few documents per instance and per paused worker), so it is read whole and followed
 * whole: no index, no filter, no design document.
 */
import type { Logger } from '../../log';
import { controlDbName } from '../schema';
import { OpenFeeds, followSource } from '../changes';
import { docPath, withRetry, type Connection } from '../connection';
import { isConflict, isDocNotFound } from '../request-errors';
import type { ControlDoc, ControlFeedOptions, ControlStore, Feed, StoreHealth } from '../types';

const FAIL_FAST_TRIES = 2;

export function openControlStore(conn: Connection, log: Logger, health: StoreHealth): ControlStore & { close(): Promise<void> } {
  const db = controlDbName(conn.dbName);
  const feeds = new OpenFeeds();
  const call = <T>(options: Parameters<Connection['request']>[0]) =>
    withRetry(() => conn.request<T>({ ...options, db }), { attempts: FAIL_FAST_TRIES });

  return {
    dbName: db,

    async snapshot() {
      const info = await call<{ update_seq: unknown }>({ path: '' });
      const all = await call<{ rows: Array<{ id: string; doc?: ControlDoc }> }>({ path: '_all_docs', qs: { include_docs: true } });
      const docs = (all.body.rows ?? []).flatMap((row) => (row.doc && !row.id.startsWith('_design/') ? [row.doc] : []));
      return { docs, seq: String(info.body.update_seq) };
    },

    follow(options: ControlFeedOptions): Feed {
      return feeds.add(
        followSource(
          conn,
          {
            db,
            label: `changes feed of ${db}`,
            filter: { method: 'GET', qs: {} },
            since: options.since,
            heartbeatMs: options.heartbeatMs,
            onBatch: (batch) => options.onBatch({ docs: batch.docs.filter((doc) => !doc._id.startsWith('_design/')), lastSeq: batch.lastSeq }),
            onReconnect: options.onReconnect,
          },
          log,
          health,
        ),
      );
    },

    async put(doc) {
      try {
        const res = await call<{ rev: string }>({ method: 'PUT', path: docPath(doc._id), body: doc });
        return { ok: true, rev: res.body.rev };
      } catch (err) {
        if (isConflict(err)) return { ok: false, conflict: true };
        throw err;
      }
    },

    async remove(id, rev) {
      try {
        await call({ method: 'DELETE', path: docPath(id), qs: { rev } });
        return true;
      } catch (err) {
        if (isConflict(err) || isDocNotFound(err)) return false;
        throw err;
      }
    },

    async get(id) {
      try {
        const res = await call<ControlDoc>({ path: docPath(id) });
        return res.body._deleted ? null : res.body;
      } catch (err) {
        if (isDocNotFound(err)) return null;
        throw err;
      }
    },

    close: () => feeds.stopAll(),
  };
}

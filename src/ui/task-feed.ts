/**
 * The dashboard's view of `_changes`: every task of every worker, from the database's current
 * seq on (a dashboard shows what happens while it is open; the overview query covers the rest).
 *
 * Not store/changes.ts's followChanges: that feed is one worker's (a `worker` filter) and
 * redelivers a batch until its consumer succeeds. Here every change goes to the page, and a
 * page that missed one (a reconnect) re-reads the overview. The same precautions apply: longpoll
 * requests with a server heartbeat and a watchdog that reconnects from the last seq after two
 * silent heartbeats (a feed can hang without closing), backoff on failure, seqs kept verbatim.
 */
import { backoffMs, delay } from '../clock';
import { toError } from '../errors';
import type { Logger } from '../log';
import { linkSignals, type Connection } from '../store/connection';
import type { TaskDoc } from '../types';

export interface TaskFeedOptions {
  heartbeatMs: number;
  /** Changed documents (a deletion is `{_id, _deleted: true}`); ids starting with `_` are left out. */
  onDocs(docs: TaskDoc[]): void;
  /** The feed (re)connected after a failure: changes may have been missed. */
  onReconnect(): void;
  log: Logger;
}

export interface TaskFeed {
  stop(): Promise<void>;
}

interface ChangesBody {
  results?: Array<{ id: string; deleted?: boolean; doc?: TaskDoc }>;
  last_seq?: unknown;
}

const BATCH_LIMIT = 500;

export async function followAllTasks(conn: Connection, options: TaskFeedOptions): Promise<TaskFeed> {
  // `since=now` is CouchDB's; pouchdb-server wants a seq: the database's update_seq serves both.
  const info = await conn.request<{ update_seq: unknown }>({ path: '' });
  let seq = String(info.body.update_seq ?? '0');
  const stopping = new AbortController();

  async function poll(): Promise<ChangesBody> {
    const request = new AbortController();
    const link = linkSignals([request.signal, stopping.signal]);
    let watchdog: NodeJS.Timeout | undefined;
    const rearm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => request.abort(), 2 * options.heartbeatMs);
    };
    rearm();
    try {
      const res = await conn.request<ChangesBody>({
        path: '_changes',
        qs: { feed: 'longpoll', since: seq, include_docs: true, heartbeat: options.heartbeatMs, limit: BATCH_LIMIT },
        signal: link.signal,
        onHeaders: rearm,
        onBytes: rearm,
      });
      return res.body;
    } finally {
      clearTimeout(watchdog);
      link.release();
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      let body: ChangesBody;
      try {
        body = await poll();
      } catch (err) {
        if (stopping.signal.aborted) return;
        failures++;
        const waitMs = backoffMs(failures - 1);
        options.log.warn(`dashboard changes feed: ${toError(err).message}; reconnecting in ${waitMs} ms`);
        await delay(waitMs, stopping.signal);
        continue;
      }
      if (failures > 0) options.onReconnect();
      failures = 0;
      const docs = (body.results ?? [])
        // Design documents (and any other `_` id CouchDB keeps for itself) are not tasks.
        .filter((row) => !row.id.startsWith('_'))
        .map((row) => row.doc ?? { _id: row.id, ...(row.deleted ? { _deleted: true } : {}) });
      const next = body.last_seq === undefined || body.last_seq === null ? seq : String(body.last_seq);
      if (docs.length > 0) options.onDocs(docs);
      // A server that answers at once with nothing new must not be polled in a tight loop.
      if (docs.length === 0 && next === seq) await delay(backoffMs(0), stopping.signal);
      seq = next;
    }
  }

  const running = run();
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

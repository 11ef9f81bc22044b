/**
 * The `_changes` feed of one worker's tasks, as longpoll requests: each answer is one batch,
 * and the next request leaves only once onBatch has finished with it, so batches arrive in
 * order and a slow consumer never has changes piling up in memory.
 *
 * A feed can hang silently (docs/spec.md §7 "The feed"): the server sends a heartbeat newline every
 * heartbeatMs while it waits, and a watchdog aborts the request when no byte arrived for
 * twice that. Every failure (the database stopped, restarted, deleted, a 5xx, a hang) ends
 * in a new request from the last seq handed to onBatch, after a backoff; the feed itself
 * never throws and only stops when asked. What each feed asks for is changes-request.ts.
 */
import { backoffMs, delay } from '../clock';
import { toError } from '../errors';
import type { Logger } from '../log';
import { linkSignals, type Connection } from './connection';
import { docIdsChangesFilter, toBatch, withFeedOptions, workerChangesFilter, type ChangesBody, type ChangesRequest } from './changes-request';
import type { ChangeBatch, DocsFeedOptions, Feed, FeedOptions, ServerKind, StoreHealth } from './types';
import type { TaskDoc } from '../types';

/**
 * The longest wait between two tries to reach the feed again: the feed is how a worker hears
 * of new tasks, so once the database is back it must not sleep out a long backoff.
 */
const MAX_RECONNECT_WAIT_MS = 5_000;

/** What to follow: which database, which changes, and where the batches go. */
export interface ChangesSource {
  /** A database other than the tasks database (the control database). */
  db?: string;
  /** Names the feed in log lines ("changes feed of worker nightly"). */
  label: string;
  /** The filter part of the request (the same for every request of this feed). */
  filter: ChangesRequest;
  since: string;
  heartbeatMs: number;
  batchSize?: number;
  onBatch(batch: ChangeBatch): Promise<void> | void;
  onReconnect?(): void;
}

/** Raised when the watchdog gave up on a silent request. */
class FeedSilentError extends Error {
  constructor(silentMs: number) {
    super(`no byte (not even a heartbeat) for ${silentMs} ms`);
  }
}

/** One worker's tasks, as the worker follows them. */
export function followChanges(conn: Connection, serverKind: ServerKind, options: FeedOptions, log: Logger, health?: StoreHealth): Feed {
  return new ChangesFeed(
    conn,
    {
      label: `changes feed of worker ${options.worker}`,
      filter: workerChangesFilter(serverKind, options.worker, options.instance),
      since: options.since,
      heartbeatMs: options.heartbeatMs,
      batchSize: options.batchSize,
      onBatch: options.onBatch,
      onReconnect: options.onReconnect,
    },
    log,
    health,
  );
}

/** The documents named in `options.ids`, as the worker follows the tasks its tasks wait for. */
export function followDocIds(conn: Connection, options: DocsFeedOptions, label: string, log: Logger, health?: StoreHealth): Feed {
  return new ChangesFeed(
    conn,
    {
      label,
      filter: docIdsChangesFilter(options.ids),
      since: options.since,
      heartbeatMs: options.heartbeatMs,
      onBatch: options.onBatch,
      onReconnect: options.onReconnect,
    },
    log,
    health,
  );
}

/** Any feed: the control database's, the dashboard's. */
export function followSource(conn: Connection, source: ChangesSource, log: Logger, health?: StoreHealth): Feed {
  return new ChangesFeed(conn, source, log, health);
}

export interface AllTasksFeedOptions {
  heartbeatMs: number;
  /** Changed tasks (a deletion is `{_id, _deleted: true}`); ids starting with `_` are left out. */
  onDocs(docs: TaskDoc[]): void;
  /** The feed reconnected after a failure: changes may have been missed. */
  onReconnect(): void;
  log: Logger;
}

/** Changes per request of the every-task feed: a page shows them as they come. */
const ALL_TASKS_BATCH = 500;

/**
 * Every task of every worker, from the database's current seq on (the dashboard: it shows what
 * happens while it is open; its overview query covers the rest). The one request it makes
 * besides `_changes` is `GET /<db>`: `since=now` is CouchDB's only, and the update_seq serves
 * both servers.
 */
export async function followAllTasks(conn: Connection, options: AllTasksFeedOptions): Promise<Feed> {
  const info = await conn.request<{ update_seq: unknown }>({ path: '' });
  return followSource(
    conn,
    {
      label: 'changes feed of all tasks',
      filter: { method: 'GET', qs: {} },
      since: String(info.body.update_seq ?? '0'),
      heartbeatMs: options.heartbeatMs,
      batchSize: ALL_TASKS_BATCH,
      onBatch: (batch) => {
        // Design documents (and any other `_` id CouchDB keeps for itself) are not tasks.
        const docs = batch.docs.filter((doc) => !doc._id.startsWith('_'));
        if (docs.length > 0) options.onDocs(docs);
      },
      onReconnect: options.onReconnect,
    },
    options.log,
  );
}

/** The feeds a store has open, so that closing it stops them all; a stopped feed leaves the set. */
export class OpenFeeds {
  private readonly feeds = new Set<Feed>();

  /** `feed`, as a Feed whose stop also takes it out of this set. */
  add(feed: Feed): Feed {
    const feeds = this.feeds;
    feeds.add(feed);
    return {
      get lastSeq() {
        return feed.lastSeq;
      },
      async stop() {
        await feed.stop();
        feeds.delete(feed);
      },
    };
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.feeds].map((feed) => feed.stop()));
    this.feeds.clear();
  }
}

class ChangesFeed implements Feed {
  private seq: string;
  private readonly stopping = new AbortController();
  private readonly running: Promise<void>;

  constructor(
    private readonly conn: Connection,
    private readonly options: ChangesSource,
    private readonly log: Logger,
    private readonly health: StoreHealth | undefined,
  ) {
    this.seq = options.since;
    this.running = this.run();
  }

  get lastSeq(): string {
    return this.seq;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const stop = this.stopping.signal;
    const who = this.options.label;
    let requestFailures = 0;
    let batchFailures = 0;
    while (!stop.aborted) {
      let batch: ChangeBatch;
      try {
        let reconnecting = requestFailures > 0;
        batch = await this.poll(() => {
          if (!reconnecting) return;
          reconnecting = false;
          requestFailures = 0;
          this.log.info(`${who} reconnected`);
          queueMicrotask(() => this.notifyReconnect());
        });
      } catch (err) {
        if (stop.aborted) break;
        requestFailures++;
        if (this.health) {
          this.health.feedReconnects++;
          this.health.requestErrors++;
        }
        const waitMs = backoffMs(requestFailures - 1, 500, MAX_RECONNECT_WAIT_MS);
        this.log.warn(`${who}: ${toError(err).message}; reconnecting from seq ${shortSeq(this.seq)} in ${waitMs} ms`);
        await delay(waitMs, stop);
        continue;
      }
      requestFailures = 0;
      if (batch.docs.length === 0 && batch.lastSeq === this.seq) {
        // Nothing new, yet the server answered at once: do not spin on such a server.
        await delay(backoffMs(0), stop);
        continue;
      }
      try {
        await this.options.onBatch(batch);
      } catch (err) {
        // The batch is delivered again from the same seq: a change must not be lost to a
        // consumer's passing failure. onReconnect tells it to re-query meanwhile.
        batchFailures++;
        const waitMs = backoffMs(batchFailures - 1);
        this.log.error(`${who}: handling a batch failed: ${toError(err).message}; delivering it again in ${waitMs} ms`);
        await delay(waitMs, stop);
        if (!stop.aborted) this.notifyReconnect();
        continue;
      }
      batchFailures = 0;
      this.seq = batch.lastSeq;
    }
  }

  /** One longpoll request, aborted by the watchdog when silent for 2 × heartbeat. */
  private async poll(onConnected: () => void): Promise<ChangeBatch> {
    const { method, qs, body } = withFeedOptions(this.options.filter, this.seq, this.options.heartbeatMs, this.options.batchSize);
    const silentLimitMs = 2 * this.options.heartbeatMs;
    const request = new AbortController();
    const link = linkSignals([request.signal, this.stopping.signal]);
    const signal = link.signal;
    let silent = false;
    let watchdog: NodeJS.Timeout | undefined;
    const rearm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        request.abort();
      }, silentLimitMs);
    };
    rearm();
    try {
      const res = await this.conn.request<ChangesBody>({
        method,
        db: this.options.db,
        path: '_changes',
        qs,
        body,
        signal,
        onHeaders: (status) => {
          rearm();
          if (status === 200) onConnected();
        },
        onBytes: rearm,
      });
      return toBatch(res.body, this.seq);
    } catch (err) {
      if (silent && !this.stopping.signal.aborted) throw new FeedSilentError(silentLimitMs);
      throw err;
    } finally {
      clearTimeout(watchdog);
      link.release();
    }
  }

  private notifyReconnect(): void {
    try {
      this.options.onReconnect?.();
    } catch (err) {
      this.log.error(`${this.options.label}: onReconnect failed: ${toError(err).message}`);
    }
  }
}

/** CouchDB seqs are long opaque strings; their head is enough to follow a log. */
function shortSeq(seq: string): string {
  return seq.length > 16 ? `${seq.slice(0, 16)}…` : seq;
}

/**
 * The TaskStore over CouchDB or pouchdb-server: batched writes whose conflicts are ordinary
 * results, indexed queries, the database clock, and the worker's changes feed.
 */
import type { AfterConfig } from '../../config/types';
import { AfterError, CouchRequestError } from '../../errors';
import { silentLogger, type Logger } from '../../log';
import type { TaskDoc } from '../../types';
import { bulkVerdict, postBulkDocs, type BulkRow } from '../bulk-docs';
import { OpenFeeds, followChanges, followDocIds } from '../changes';
import { ClusterWrites } from './cluster-writes';
import { closingController, docPath, openConnection, probeServer, withRetry, type Connection, type RequestOptions, type Response } from '../connection';
import { openControlStore } from './control-store';
import { isDocNotFound } from '../request-errors';
import { UNREACHABLE, UNREACHABLE_BY_WORKER_VIEW, WORKER_STATUS_DATE, WORKER_STATUS_LEASE, useIndex } from '../schema';
import type { ControlStore, DocsFeedOptions, Feed, FeedOptions, FindPage, ServerInfo, StoreHealth, TaskStore, TaskWrite, WriteOutcome } from '../types';
import { WriteBatcher, type BatchItem, type WriteKind } from './write-batcher';
import { toOutcomes, type WriteAnswer } from './write-outcomes';

export interface StoreOptions {
  log?: Logger;
  /**
   * 'forever': a worker waits out any outage (network errors, 429, 5xx are retried until the
   * database answers or the store is closed). 'fail-fast': three tries, then the error (CLI).
   */
  retry: 'forever' | 'fail-fast';
  /** Gives up the first contact (which waits for the database under 'forever'). */
  signal?: AbortSignal;
}

const FAIL_FAST_TRIES = 3;
/**
 * Documents per request in the background lane: a server that writes one request at a time
 * (pouchdb-server) makes a claim sent meanwhile wait behind at most this many documents.
 */
const BACKGROUND_LANE_BATCH = 100;
/** Ids per `_all_docs` request of getMany: a body, not a URL, but still bounded. */
const GET_MANY_BATCH = 500;

export async function createStore(config: AfterConfig, options: StoreOptions): Promise<TaskStore> {
  const log = options.log ?? silentLogger();
  const conn = openConnection(config, { log });
  const attempts = options.retry === 'forever' ? Infinity : FAIL_FAST_TRIES;
  try {
    const probe = await withRetry(() => probeServer(conn, options.signal), {
      signal: options.signal,
      attempts,
      onRetry: (err, _attempt, waitMs) => log.warn(`${err.message}; trying again in ${seconds(waitMs)}`),
    });
    return new CouchStore(conn, probe.info, probe.replicas, { log, attempts });
  } catch (err) {
    conn.close();
    throw err;
  }
}

/** A page position: CouchDB's own bookmark, or a skip count where `_find` gives none (pouchdb-server). */
type PagePosition = { bookmark: string } | { skip: number };

function encodePosition(position: PagePosition): string {
  return 'bookmark' in position ? `bookmark:${position.bookmark}` : `skip:${position.skip}`;
}

function decodePosition(text: string | undefined): PagePosition | undefined {
  if (text === undefined) return undefined;
  if (text.startsWith('bookmark:')) return { bookmark: text.slice('bookmark:'.length) };
  const skip = Number(text.startsWith('skip:') ? text.slice('skip:'.length) : NaN);
  if (!Number.isInteger(skip) || skip < 0) throw new AfterError('E_USAGE', `not a bookmark from findByStatus: ${JSON.stringify(text)}`);
  return { skip };
}

class CouchStore implements TaskStore {
  private readonly log: Logger;
  private readonly attempts: number;
  private readonly closing = closingController();
  private readonly runLane = new WriteBatcher((docs, kinds) => this.writeBatch(docs, kinds));
  private readonly backgroundLane = new WriteBatcher((docs, kinds) => this.writeBatch(docs, kinds), {
    maxDocsPerBatch: BACKGROUND_LANE_BATCH,
    maxBatchesInFlight: 1,
  });
  private readonly feeds = new OpenFeeds();
  readonly health: StoreHealth = { requestErrors: 0, feedReconnects: 0 };
  readonly control: ControlStore & { close(): Promise<void> };
  /** Only on a replicated CouchDB database (n > 1): docs/spec.md §7 "Claims in a cluster". */
  private readonly cluster: ClusterWrites | undefined;

  constructor(
    private readonly conn: Connection,
    readonly server: ServerInfo,
    /** The database's n. */
    replicas: number,
    settings: { log: Logger; attempts: number },
  ) {
    this.log = settings.log;
    this.attempts = settings.attempts;
    this.control = openControlStore(conn, this.log, this.health);
    if (server.clustered) this.cluster = new ClusterWrites((options) => this.call(options), replicas, this.log);
  }

  dbNow(): number {
    return this.conn.clock.dbNow();
  }

  clockSkewMs(): number {
    return this.conn.clock.skewMs();
  }

  async updateSeq(options: { once?: boolean } = {}): Promise<string> {
    const info = await this.call<{ update_seq: unknown }>({ path: '' }, options.once ? 1 : this.attempts);
    // CouchDB's seq is a string, pouchdb-server's a number: both are kept verbatim.
    return String(info.body.update_seq);
  }

  async get(id: string): Promise<TaskDoc | null> {
    // In a cluster a plain read answers from the copies that reply first, which may not have
    // the latest writes yet: the winner over every copy's leaves is what the task is.
    if (this.cluster) return this.cluster.read(id);
    try {
      const res = await this.call<TaskDoc>({ path: docPath(id) });
      return res.body._deleted ? null : res.body;
    } catch (err) {
      if (isDocNotFound(err)) return null;
      throw err;
    }
  }

  async getMany(ids: readonly string[]): Promise<Map<string, TaskDoc | null>> {
    const unique = [...new Set(ids)];
    // In a cluster each is the winner over every copy's leaves, as `get` reads it.
    if (this.cluster) return new Map(await Promise.all(unique.map(async (id) => [id, await this.get(id)] as const)));
    const found = new Map<string, TaskDoc | null>();
    for (let start = 0; start < unique.length; start += GET_MANY_BATCH) {
      const keys = unique.slice(start, start + GET_MANY_BATCH);
      // A missing key comes back as `{"key": ..., "error": "not_found"}`, a deleted one with
      // `value.deleted` and `doc: null`.
      const res = await this.call<{ rows?: Array<{ key?: string; doc?: TaskDoc | null }> }>({
        method: 'POST',
        path: '_all_docs',
        qs: { include_docs: true },
        body: { keys },
      });
      for (const row of res.body.rows ?? []) {
        if (typeof row.key === 'string') found.set(row.key, row.doc && !row.doc._deleted ? row.doc : null);
      }
    }
    for (const id of unique) if (!found.has(id)) found.set(id, null);
    return found;
  }

  async write(writes: readonly TaskWrite[]): Promise<WriteOutcome[]> {
    if (this.closing.signal.aborted) throw closedError();
    const answers = new Array<WriteAnswer>(writes.length);
    const lanes = { run: { items: [] as BatchItem[], at: [] as number[] }, background: { items: [] as BatchItem[], at: [] as number[] } };
    const claimChecks: Array<Promise<void>> = [];
    writes.forEach((write, index) => {
      const kind: WriteKind = write.claim ? 'claim' : 'plain';
      const lane = lanes[write.lane ?? 'run'];
      const send = (): void => {
        lane.items.push({ doc: write.doc, kind, neededByMs: write.neededByMs ?? 0 });
        lane.at.push(index);
      };
      if (kind !== 'claim' || !this.cluster) return send();
      // A claim goes only on the revision that wins over every copy (cluster-writes.ts).
      const cluster = this.cluster;
      claimChecks.push(cluster.mayClaim(write.doc).then((may) => (may ? send() : void (answers[index] = { ok: false, conflict: true }))));
    });
    if (claimChecks.length > 0) await Promise.all(claimChecks);
    const [run, background] = await Promise.all([this.runLane.write(lanes.run.items), this.backgroundLane.write(lanes.background.items)]);
    run.forEach((answer, i) => (answers[lanes.run.at[i]!] = answer));
    background.forEach((answer, i) => (answers[lanes.background.at[i]!] = answer));
    return toOutcomes(
      writes.map((write) => write.doc),
      answers,
      (ids) => this.getMany(ids),
    );
  }

  async findByStatus(worker: string, status: string, dateAtMost: string, limit: number, bookmark?: string): Promise<FindPage> {
    const position = decodePosition(bookmark);
    const res = await this.call<{ docs: TaskDoc[]; bookmark?: string }>({
      method: 'POST',
      path: '_find',
      body: {
        selector: { worker, status, date: { $lte: dateAtMost } },
        sort: [{ worker: 'asc' }, { status: 'asc' }, { date: 'asc' }],
        use_index: useIndex(WORKER_STATUS_DATE),
        limit,
        ...(position && 'bookmark' in position ? { bookmark: position.bookmark } : {}),
        ...(position && 'skip' in position ? { skip: position.skip } : {}),
      },
    });
    const docs = res.body.docs ?? [];
    if (docs.length < limit) return { docs };
    const next: PagePosition = typeof res.body.bookmark === 'string' && res.body.bookmark !== 'nil'
      ? { bookmark: res.body.bookmark }
      : { skip: (position && 'skip' in position ? position.skip : 0) + docs.length };
    return { docs, bookmark: encodePosition(next) };
  }

  async findUnreachable(worker: string, limit: number): Promise<TaskDoc[]> {
    if (this.server.kind === 'couchdb') {
      // The partial index holds only such tasks; the selector repeats its filter, as Mango
      // wants, and costs nothing more.
      const res = await this.call<{ docs: TaskDoc[] }>({
        method: 'POST',
        path: '_find',
        body: { selector: { worker, ...UNREACHABLE.partial }, use_index: useIndex(UNREACHABLE), limit },
      });
      return res.body.docs ?? [];
    }
    const res = await this.call<{ rows: Array<{ doc?: TaskDoc }> }>({
      method: 'GET',
      path: UNREACHABLE_BY_WORKER_VIEW,
      qs: { key: worker, include_docs: true, limit },
    });
    return (res.body.rows ?? []).flatMap((row) => (row.doc ? [row.doc] : []));
  }

  async findExpiredLeases(worker: string, status: string, before: string, limit: number): Promise<TaskDoc[]> {
    const res = await this.call<{ docs: TaskDoc[] }>({
      method: 'POST',
      path: '_find',
      body: {
        selector: { worker, status, 'lease.expires_at': { $lt: before } },
        sort: [{ worker: 'asc' }, { status: 'asc' }, { 'lease.expires_at': 'asc' }],
        use_index: useIndex(WORKER_STATUS_LEASE),
        limit,
      },
    });
    return res.body.docs ?? [];
  }

  follow(options: FeedOptions): Feed {
    if (this.closing.signal.aborted) throw closedError();
    const cluster = this.cluster;
    const watched: FeedOptions = cluster
      ? {
          ...options,
          onBatch: (batch) => {
            cluster.noticeRivals(batch.docs);
            return options.onBatch(batch);
          },
        }
      : options;
    return this.feeds.add(followChanges(this.conn, this.server.kind, watched, this.log, this.health));
  }

  followDocs(options: DocsFeedOptions): Feed {
    if (this.closing.signal.aborted) throw closedError();
    return this.feeds.add(followDocIds(this.conn, options, `changes feed of ${options.ids.length} awaited task(s)`, this.log, this.health));
  }

  async close(): Promise<void> {
    // The cluster's kept branches get their last look while requests still go.
    await this.cluster?.close();
    this.closing.abort();
    await this.feeds.stopAll();
    await this.control.close();
    this.conn.close();
  }

  /** One request under the store's retry policy, given up when the store closes. */
  private async call<T>(options: RequestOptions, attempts = this.attempts): Promise<Response<T>> {
    const signal = this.closing.signal;
    try {
      return await withRetry(() => this.conn.request<T>({ ...options, signal }), {
        signal,
        attempts,
        onRetry: (err, _attempt, waitMs) => {
          this.health.requestErrors++;
          this.log.warn(`${err.message}; trying again in ${seconds(waitMs)}`);
        },
      });
    } catch (err) {
      if (signal.aborted) throw closedError();
      // A 404 or a 409 is an answer the caller expects, not a failure of the database.
      if (!(err instanceof CouchRequestError) || (err.status !== 404 && err.status !== 409)) this.health.requestErrors++;
      throw err;
    }
  }

  /** The batcher's sender: one `_bulk_docs`, each document's outcome on its own. */
  private async writeBatch(docs: TaskDoc[], kinds: WriteKind[]): Promise<WriteAnswer[]> {
    // A retried batch whose first try landed comes back as conflicts: the callers read back.
    const answer = await postBulkDocs((options) => this.call(options), docs);
    const answers = docs.map((doc, index) => this.rowAnswer(doc, answer.rows[index]));
    if (this.cluster) await this.cluster.settle(docs, answer, kinds, answers);
    return answers;
  }

  private rowAnswer(doc: TaskDoc, row: BulkRow | undefined): WriteAnswer {
    const id = row?.id ?? doc._id;
    const verdict = bulkVerdict(row);
    switch (verdict.kind) {
      case 'written':
        // The document sent is the caller's to keep (TaskWrite.doc): it becomes the one written.
        doc._id = id;
        doc._rev = verdict.rev;
        return { ok: true, doc };
      case 'conflict':
        return { ok: false, conflict: true };
      case 'unanswered':
        return { ok: false, error: new CouchRequestError('E_DB_HTTP', `CouchDB at ${this.conn.displayUrl} gave no result for task ${doc._id} in _bulk_docs`) };
    }
    this.health.requestErrors++;
    const reason = verdict.reason ?? verdict.error;
    if (verdict.error === 'forbidden') {
      return { ok: false, error: new CouchRequestError('E_FORBIDDEN', `CouchDB refused to write task ${id}: ${reason}`, 403, reason) };
    }
    if (verdict.error === 'unauthorized') {
      return { ok: false, error: new CouchRequestError('E_DB_AUTH', `CouchDB at ${this.conn.displayUrl} refused to write task ${id} with these credentials: ${reason}`, 401, reason) };
    }
    return { ok: false, error: new CouchRequestError('E_DB_HTTP', `CouchDB at ${this.conn.displayUrl} did not write task ${id}: ${verdict.error} ${reason}`.trim(), 400, reason) };
  }
}

function closedError(): AfterError {
  return new AfterError('E_STORE_CLOSED', 'the task store was closed before CouchDB answered');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

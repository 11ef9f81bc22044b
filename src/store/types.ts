/**
 * The storage contract the worker relies on. Only `src/store/` imports nano; the worker
 * receives a TaskStore and never sees HTTP, status codes or nano's errors.
 */
import type { TaskDoc } from '../types';

/** Which server a store talks to; `memory` is the in-process store (memory-store.ts). */
export type ServerKind = 'couchdb' | 'pouchdb-server' | 'memory';

export interface ServerInfo {
  kind: ServerKind;
  version: string;
  /** CouchDB only: the database is replicated (n > 1), so a 202 is not ownership. */
  clustered: boolean;
}

/**
 * How one write of a task went: the one answer to "did my write win", from the database to the
 * held task. A conflict is an ordinary outcome ("someone else changed it first"), never an
 * exception.
 */
export type WriteOutcome =
  /** Written; `doc` is the task as written, with its new `_rev`. */
  | { kind: 'written'; doc: TaskDoc }
  /**
   * Someone else wrote first. `fresh` is the task as it is now (null: deleted), read back at
   * once. `contestedRev`: in a cluster, our claim reached fewer copies than a quorum (docs/spec.md §7),
   * so a rival may own the task; the database may still show this very revision, which is not
   * ours all the same, must not be held, nor taken for our own write on a later read.
   */
  | { kind: 'lost'; fresh: TaskDoc | null; contestedRev?: string }
  /** Refused (not a conflict: a validate_doc_update, a permission, a malformed body) or unreadable. */
  | { kind: 'failed'; error: Error };

/**
 * Which queue a write takes. `run`: claims, finishes and users' requests, which a job or a
 * user waits for, sent at once. `background`: writes nothing waits on (schedules, lease
 * renewals, hand-backs, verdicts), a smaller request at a time, the one needed soonest first:
 * a burst of them (600 tasks arriving at once) then never fills the database's queue ahead of
 * a claim.
 */
export type WriteLane = 'run' | 'background';

/** One document write of a batch. */
export interface TaskWrite {
  /**
   * The document to store, based on its `_rev`. Not copied: the caller must not change it
   * afterwards, and once written it is the document answered, with its new `_rev`.
   */
  doc: TaskDoc;
  /** @default 'run' */
  lane?: WriteLane;
  /** In the background lane, writes needed soonest leave first: the task's date, say. @default 0 (at once) */
  neededByMs?: number;
  /**
   * The write makes this instance the task's holder (a `scheduled` hold, a `running` claim). In
   * a cluster such a write that reached fewer copies than a quorum (202) is not ownership: it
   * comes back lost and `contestedRev` (docs/spec.md §7). Other writes (a finish, a lease renewal) go on
   * the branch this instance already owns, and a 202 for them is a write still spreading.
   */
  claim?: boolean;
}

export interface ChangeBatch {
  /** Changed documents (include_docs); a deleted one has `_deleted: true`. */
  docs: TaskDoc[];
  /** Opaque seq after this batch; store verbatim. */
  lastSeq: string;
}

export interface FeedOptions {
  worker: string;
  /**
   * The instance following: the feed may leave out what tells it nothing new (changes-request.ts,
   * `feedShows`): its own claims (running under its lease) and finished tasks. A user's change to
   * such a task that keeps them so is seen at the instance's next write of the task, as a
   * conflict. @default none: every change of the worker's tasks
   */
  instance?: string;
  since: string;
  /** Server heartbeat; the watchdog reconnects after 2 × this with no byte. */
  heartbeatMs: number;
  /** Max changes per batch. @default 1000 */
  batchSize?: number;
  /** Called for every batch, in order; the next request waits for it. */
  onBatch(batch: ChangeBatch): Promise<void> | void;
  /** Called after the feed reconnected (a hint: re-query what is due, a change may be missed). */
  onReconnect?(): void;
}

/**
 * A feed of a few named documents (the tasks other tasks wait for), whatever worker they belong
 * to: `_changes?filter=_doc_ids` with the ids in the body, built into CouchDB (no couchjs) and
 * pouchdb-server alike. A new set of ids is a new feed from the last one's seq.
 */
export interface DocsFeedOptions {
  ids: readonly string[];
  since: string;
  heartbeatMs: number;
  onBatch(batch: ChangeBatch): Promise<void> | void;
  onReconnect?(): void;
}

export interface Feed {
  /** The seq of the last batch handed to onBatch. */
  readonly lastSeq: string;
  /** Stop following; resolves when no request is in flight. */
  stop(): Promise<void>;
}

export interface FindPage {
  docs: TaskDoc[];
  /** Pass back to get the next page; undefined when this page was the last. */
  bookmark?: string;
}

/** Running counts of what went wrong between this process and the database (metrics read them). */
export interface StoreHealth {
  /** Requests that failed (no answer, 5xx, refused), whether a retry then succeeded or not. */
  requestErrors: number;
  /** Changes feed requests that failed and were made again from the last seq. */
  feedReconnects: number;
}

/**
 * A document of the control database, `<tasks db>_control`: what instances say about themselves
 * (`instance:<worker>:<instance>`, rewritten every few seconds), a paused worker name
 * (`pause:<worker>`), and a user's request to a worker about one task (`request:<task id>:...`).
 * Kept out of the tasks database so that none of it wakes a worker's task feed, lands in the
 * task indexes, or is mistaken for a task; untrusted like every document.
 */
export interface ControlDoc {
  _id: string;
  _rev?: string;
  _deleted?: boolean;
  [field: string]: unknown;
}

export interface ControlBatch {
  docs: ControlDoc[];
  lastSeq: string;
}

export interface ControlFeedOptions {
  since: string;
  heartbeatMs: number;
  onBatch(batch: ControlBatch): Promise<void> | void;
  onReconnect?(): void;
}

/** The control database. Writes fail fast (a heartbeat that misses is written again later). */
export interface ControlStore {
  /** Its name, for log lines. */
  readonly dbName: string;
  /**
   * Every document, and the seq to follow from (read first, so nothing written meanwhile is
   * missed). Throws a CouchRequestError E_DB_MISSING when `after init` has not created it.
   */
  snapshot(): Promise<{ docs: ControlDoc[]; seq: string }>;
  /** Follow every change, reconnecting forever until stopped. */
  follow(options: ControlFeedOptions): Feed;
  /** Create (no `_rev`) or update (with `_rev`); a conflict is an ordinary result. */
  put(doc: ControlDoc): Promise<{ ok: true; rev: string } | { ok: false; conflict: true }>;
  /** Delete one revision; false when it was not the current one (or is gone). */
  remove(id: string, rev: string): Promise<boolean>;
  get(id: string): Promise<ControlDoc | null>;
}

export interface TaskStore {
  readonly server: ServerInfo;
  readonly health: StoreHealth;
  /** The control database beside the tasks database. */
  readonly control: ControlStore;
  /** Epoch ms by the database's clock (estimated from responses' Date headers). */
  dbNow(): number;
  /** Local clock minus database clock, in ms (positive: this machine is ahead). */
  clockSkewMs(): number;
  /** The database's current update_seq. `once`: one request, no retry (a metrics scrape). */
  updateSeq(options?: { once?: boolean }): Promise<string>;
  /** The document, or null when it does not exist or is deleted. */
  get(id: string): Promise<TaskDoc | null>;
  /**
   * Several documents in one request (`_all_docs` with `keys`), by id; null for one that does
   * not exist or is deleted. Every id asked is in the map. In a cluster each is the winner over
   * every copy, as `get` reads it.
   */
  getMany(ids: readonly string[]): Promise<Map<string, TaskDoc | null>>;
  /**
   * Write each document based on its `_rev`; one outcome per write, in the same order. Writes
   * of the same turn of the event loop go out together as `_bulk_docs` requests, each
   * document's conflict reported on its own; a lost write is read back at once (its `fresh`),
   * and one whose first try landed with only the answer lost counts as written. Network errors
   * and 5xx are retried with backoff until the database answers (or the store is closed).
   */
  write(writes: readonly TaskWrite[]): Promise<WriteOutcome[]>;
  /**
   * Tasks of `worker` with `status` whose `date` (as stored, compared as a string) is at most
   * `dateAtMost`, sorted by date. Served by the [worker, status, date] index.
   */
  findByStatus(worker: string, status: string, dateAtMost: string, limit: number, bookmark?: string): Promise<FindPage>;
  /**
   * Tasks of `worker` that no Mango query reaches: no `status` at all (a user may leave it
   * out: it means "waiting"), a status that is not a known string, an active task whose `date`
   * is not a date string, a `running` task without a lease. Served by a view that holds only
   * such documents; the worker gives each one a status or a verdict, so this set stays small.
   */
  findUnreachable(worker: string, limit: number): Promise<TaskDoc[]>;
  /** Tasks of `worker` with `status` whose `lease.expires_at` is before `before`. Served by an index. */
  findExpiredLeases(worker: string, status: string, before: string, limit: number): Promise<TaskDoc[]>;
  /** Follow `_changes` for one worker's tasks, reconnecting forever until stopped. */
  follow(options: FeedOptions): Feed;
  /** Follow `_changes` of the documents named in `options.ids` (any worker's), reconnecting forever until stopped. */
  followDocs(options: DocsFeedOptions): Feed;
  /** Stop retries and release sockets. */
  close(): Promise<void>;
}

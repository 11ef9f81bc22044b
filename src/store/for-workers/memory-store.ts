/**
 * A TaskStore in memory, with CouchDB's rules on one node: every write names the `_rev` it is
 * based on and a stale one is a conflict; a deletion leaves a tombstone; the changes feed gives
 * each changed document once, at its latest revision, in seq order; queries see what the
 * indexes would. It passes the same contract suite as pouchdb-server and CouchDB
 * (test/helpers/store-contract.ts), so the worker can be tested in one process with a fake
 * clock, and the library can run a worker with no database at all (a demo, a test of one's
 * jobs).
 */
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../clock';
import { AfterError } from '../../errors';
import { STATUSES, type TaskDoc } from '../../types';
import type {
  ChangeBatch,
  ControlDoc,
  ControlFeedOptions,
  ControlStore,
  DocsFeedOptions,
  Feed,
  FeedOptions,
  FindPage,
  ServerInfo,
  StoreHealth,
  TaskStore,
  TaskWrite,
  WriteOutcome,
} from '../types';
import { toOutcomes, type WriteAnswer } from './write-outcomes';
import { feedShows } from '../changes-request';

export interface MemoryStoreOptions {
  /** The database's clock. @default the system clock */
  clock?: Clock;
  /** How far the database's clock is ahead of `clock` (negative: behind). @default 0 */
  dbClockAheadMs?: number;
}

interface Stored {
  doc: Record<string, unknown> & { _id: string; _rev: string; _deleted?: boolean };
  seq: number;
}

/** One database: documents by id, and a seq per change. */
class MemoryDb {
  private readonly docs = new Map<string, Stored>();
  private seq = 0;
  private readonly waiters = new Set<() => void>();

  get updateSeq(): number {
    return this.seq;
  }

  current(id: string): Stored | undefined {
    return this.docs.get(id);
  }

  live(): Array<Stored['doc']> {
    return [...this.docs.values()].filter((s) => !s.doc._deleted).map((s) => s.doc);
  }

  /** CouchDB's single-node rule: the write names the current revision, or none for a new (or deleted) document. */
  put(input: Record<string, unknown> & { _id: string }): { ok: true; doc: Stored['doc'] } | { ok: false } {
    const existing = this.docs.get(input._id);
    const liveExisting = existing && !existing.doc._deleted;
    const basedOn = input._rev;
    if (liveExisting ? basedOn !== existing.doc._rev : basedOn !== undefined && basedOn !== existing?.doc._rev) return { ok: false };
    const generation = existing ? Number.parseInt(existing.doc._rev, 10) + 1 : 1;
    const rev = `${generation}-${randomBytes(16).toString('hex')}`;
    const body = JSON.parse(JSON.stringify(input)) as Stored['doc'];
    const doc: Stored['doc'] = body._deleted ? { _id: input._id, _rev: rev, _deleted: true } : { ...body, _rev: rev };
    this.seq += 1;
    this.docs.set(input._id, { doc, seq: this.seq });
    for (const wake of [...this.waiters]) wake();
    return { ok: true, doc: copy(doc) };
  }

  /** Changes after `since`, each document once at its latest revision, in seq order. */
  changesSince(since: number, limit: number): { docs: Array<Stored['doc']>; lastSeq: number } {
    const changed = [...this.docs.values()].filter((s) => s.seq > since).sort((a, b) => a.seq - b.seq).slice(0, limit);
    return { docs: changed.map((s) => copy(s.doc)), lastSeq: changed.length > 0 ? changed[changed.length - 1]!.seq : since };
  }

  /** Resolves at the next write, or when `signal` aborts. */
  nextWrite(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }
}

/** Follow `db` from `since`, handing each batch of `wanted` changes to `onBatch` in order. */
function followDb(db: MemoryDb, since: string, onBatch: (batch: ChangeBatch) => Promise<void> | void, wanted: (doc: TaskDoc) => boolean): Feed {
  const stopping = new AbortController();
  let seq = Number(since) || 0;
  const running = (async () => {
    while (!stopping.signal.aborted) {
      const { docs, lastSeq } = db.changesSince(seq, 1000);
      if (lastSeq === seq) {
        await db.nextWrite(stopping.signal);
        continue;
      }
      const batch = docs.filter((doc) => wanted(doc as TaskDoc)) as TaskDoc[];
      // Like a longpoll answer: the batch arrives after the write that caused it has returned.
      await new Promise((resolve) => setImmediate(resolve));
      if (stopping.signal.aborted) return;
      try {
        if (batch.length > 0) await onBatch({ docs: batch, lastSeq: String(lastSeq) });
        seq = lastSeq;
      } catch {
        // delivered again from the same seq, as the HTTP feed does
      }
    }
  })();
  return {
    get lastSeq() {
      return String(seq);
    },
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

class MemoryControlStore implements ControlStore {
  readonly dbName = 'memory_control';
  private readonly db = new MemoryDb();
  private readonly feeds = new Set<Feed>();

  async snapshot(): Promise<{ docs: ControlDoc[]; seq: string }> {
    return { docs: this.db.live().map(copy) as ControlDoc[], seq: String(this.db.updateSeq) };
  }

  follow(options: ControlFeedOptions): Feed {
    const feed = followDb(this.db, options.since, (batch) => options.onBatch({ docs: batch.docs as ControlDoc[], lastSeq: batch.lastSeq }), () => true);
    this.feeds.add(feed);
    return feed;
  }

  async put(doc: ControlDoc): Promise<{ ok: true; rev: string } | { ok: false; conflict: true }> {
    const result = this.db.put(doc);
    return result.ok ? { ok: true, rev: result.doc._rev } : { ok: false, conflict: true };
  }

  async remove(id: string, rev: string): Promise<boolean> {
    return this.db.put({ _id: id, _rev: rev, _deleted: true }).ok;
  }

  async get(id: string): Promise<ControlDoc | null> {
    const stored = this.db.current(id);
    return stored && !stored.doc._deleted ? (copy(stored.doc) as ControlDoc) : null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.feeds].map((feed) => feed.stop()));
    this.feeds.clear();
  }
}

export class MemoryStore implements TaskStore {
  readonly server: ServerInfo = { kind: 'memory', version: '1', clustered: false };
  readonly health: StoreHealth = { requestErrors: 0, feedReconnects: 0 };
  readonly control = new MemoryControlStore();
  private readonly db = new MemoryDb();
  private readonly feeds = new Set<Feed>();
  private readonly clock: Clock;
  private readonly aheadMs: number;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.aheadMs = options.dbClockAheadMs ?? 0;
  }

  dbNow(): number {
    return this.clock.now() + this.aheadMs;
  }

  clockSkewMs(): number {
    return -this.aheadMs;
  }

  async updateSeq(): Promise<string> {
    this.checkOpen();
    return String(this.db.updateSeq);
  }

  async get(id: string): Promise<TaskDoc | null> {
    this.checkOpen();
    return this.currentDoc(id);
  }

  async getMany(ids: readonly string[]): Promise<Map<string, TaskDoc | null>> {
    this.checkOpen();
    // One request: the answer comes in a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    return new Map(ids.map((id) => [id, this.currentDoc(id)]));
  }

  async write(writes: readonly TaskWrite[]): Promise<WriteOutcome[]> {
    this.checkOpen();
    // Like the HTTP store: the answer comes in a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    const docs = writes.map((write) => write.doc);
    const answers = docs.map((doc): WriteAnswer => {
      const result = this.db.put(doc as TaskDoc & Record<string, unknown>);
      return result.ok ? { ok: true, doc: result.doc as TaskDoc } : { ok: false, conflict: true };
    });
    return toOutcomes(docs, answers, async (ids) => new Map(ids.map((id) => [id, this.currentDoc(id)])));
  }

  async findByStatus(worker: string, status: string, dateAtMost: string, limit: number, bookmark?: string): Promise<FindPage> {
    this.checkOpen();
    const skip = bookmark === undefined ? 0 : Number(bookmark);
    const found = this.db
      .live()
      .filter((doc) => doc.worker === worker && doc.status === status && typeof doc.date === 'string' && doc.date <= dateAtMost)
      .sort((a, b) => compareText(a.date as string, b.date as string) || compareText(a._id, b._id));
    const docs = found.slice(skip, skip + limit).map(copy) as TaskDoc[];
    return skip + limit < found.length ? { docs, bookmark: String(skip + limit) } : { docs };
  }

  async findUnreachable(worker: string, limit: number): Promise<TaskDoc[]> {
    this.checkOpen();
    return this.db.live().filter((doc) => doc.worker === worker && isUnreachable(doc)).slice(0, limit).map(copy) as TaskDoc[];
  }

  async findExpiredLeases(worker: string, status: string, before: string, limit: number): Promise<TaskDoc[]> {
    this.checkOpen();
    const expiresAt = (doc: Record<string, unknown>): unknown => (doc.lease as { expires_at?: unknown } | undefined)?.expires_at;
    return this.db
      .live()
      .filter((doc) => {
        const expires = expiresAt(doc);
        return doc.worker === worker && doc.status === status && typeof expires === 'string' && expires < before;
      })
      .sort((a, b) => compareText(expiresAt(a) as string, expiresAt(b) as string))
      .slice(0, limit)
      .map(copy) as TaskDoc[];
  }

  follow(options: FeedOptions): Feed {
    this.checkOpen();
    const feed = followDb(this.db, options.since, options.onBatch, (doc) => feedShows(doc, options.worker, options.instance));
    this.feeds.add(feed);
    return feed;
  }

  followDocs(options: DocsFeedOptions): Feed {
    this.checkOpen();
    const ids = new Set(options.ids);
    const feed = followDb(this.db, options.since, options.onBatch, (doc) => ids.has(doc._id));
    this.feeds.add(feed);
    return feed;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.feeds].map((feed) => feed.stop()));
    this.feeds.clear();
    await this.control.close();
  }

  private currentDoc(id: string): TaskDoc | null {
    const stored = this.db.current(id);
    return stored && !stored.doc._deleted ? (copy(stored.doc) as TaskDoc) : null;
  }

  private checkOpen(): void {
    if (this.closed) throw new AfterError('E_STORE_CLOSED', 'the task store was closed');
  }
}

/** What the unreachable index holds (schema.ts UNREACHABLE). */
function isUnreachable(doc: Record<string, unknown>): boolean {
  const status = doc.status;
  if (status === undefined || !(STATUSES as readonly unknown[]).includes(status)) return true;
  const dated = status === 'waiting' || status === 'scheduled' || status === 'reschedule' || status === 'cancel';
  if (dated && !(typeof doc.date === 'string' && /^\d{4}-\d{2}-\d{2}/.test(doc.date))) return true;
  if ((status === 'waiting' || status === 'scheduled' || status === 'reschedule') && typeof doc.run_now === 'string') return true;
  const lease = doc.lease as { expires_at?: unknown } | undefined;
  return status === 'running' && !(typeof lease === 'object' && lease !== null && typeof lease.expires_at === 'string');
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * One instance's connection to a shared MemoryStore, as a second process would have its own
 * HTTP connection to the same database: closing it (a worker's stop) leaves the database and the
 * other instances alone, and `kill()` imitates a `kill -9` of the instance (or a network cut
 * that never heals): nothing it sends from then on reaches the database, no answer comes back
 * (not even to a request already in flight), and its feeds go silent. `onActivity` is called for
 * every request, answer and delivered batch, so a simulation knows when all is quiet.
 */
import { AfterError } from '../../src/errors';
import type { MemoryStore } from '../../src/store/for-workers/memory-store';
import type {
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
} from '../../src/store/types';
import type { TaskDoc } from '../../src/types';

/** What a dead peer answers: nothing, ever. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

class Line {
  killed = false;
  closed = false;
  /** Fake milliseconds each request takes to reach the database. */
  latencyMs = 0;
  readonly feeds = new Set<Feed>();

  constructor(private readonly onActivity: () => void) {}

  async call<T>(request: () => Promise<T>): Promise<T> {
    if (this.killed) return never();
    if (this.closed) throw new AfterError('E_STORE_CLOSED', 'the task store was closed');
    this.onActivity();
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (this.killed) return never();
    const answer = await request();
    if (this.killed) return never();
    this.onActivity();
    return answer;
  }

  /** A feed of the shared store whose batches stop at this connection's kill or close. */
  follow(start: (deliver: <B>(onBatch: (batch: B) => Promise<void> | void) => (batch: B) => Promise<void> | void) => Feed): Feed {
    if (this.closed) throw new AfterError('E_STORE_CLOSED', 'the task store was closed');
    const inner = start((onBatch) => (batch) => {
      if (this.killed || this.closed) return;
      this.onActivity();
      return onBatch(batch);
    });
    this.feeds.add(inner);
    const line = this;
    return {
      get lastSeq() {
        return inner.lastSeq;
      },
      async stop() {
        if (line.killed) return never();
        line.feeds.delete(inner);
        await inner.stop();
      },
    };
  }

  async stopFeeds(): Promise<void> {
    const feeds = [...this.feeds];
    this.feeds.clear();
    await Promise.all(feeds.map((feed) => feed.stop()));
  }
}

class ControlConnection implements ControlStore {
  constructor(
    private readonly shared: ControlStore,
    private readonly line: Line,
  ) {}

  get dbName(): string {
    return this.shared.dbName;
  }

  snapshot(): Promise<{ docs: ControlDoc[]; seq: string }> {
    return this.line.call(() => this.shared.snapshot());
  }

  follow(options: ControlFeedOptions): Feed {
    return this.line.follow((deliver) => this.shared.follow({ ...options, onBatch: deliver(options.onBatch) }));
  }

  put(doc: ControlDoc): Promise<{ ok: true; rev: string } | { ok: false; conflict: true }> {
    return this.line.call(() => this.shared.put(doc));
  }

  remove(id: string, rev: string): Promise<boolean> {
    return this.line.call(() => this.shared.remove(id, rev));
  }

  get(id: string): Promise<ControlDoc | null> {
    return this.line.call(() => this.shared.get(id));
  }
}

export class Connection implements TaskStore {
  readonly control: ControlStore;
  private readonly line: Line;

  constructor(
    private readonly shared: MemoryStore,
    onActivity: () => void,
  ) {
    this.line = new Line(onActivity);
    this.control = new ControlConnection(shared.control, this.line);
  }

  get server(): ServerInfo {
    return this.shared.server;
  }

  get health(): StoreHealth {
    return this.shared.health;
  }

  get killed(): boolean {
    return this.line.killed;
  }

  /** Every request from now on reaches the database `ms` fake milliseconds after it is sent. */
  set latencyMs(ms: number) {
    this.line.latencyMs = ms;
  }

  /** The instance is gone: nothing more reaches the database, nothing comes back. */
  kill(): void {
    this.line.killed = true;
    // The shared store's feeds of this connection deliver nothing from now on; stop them so the
    // database can be closed at the end of the test.
    void this.line.stopFeeds();
  }

  dbNow(): number {
    return this.shared.dbNow();
  }

  clockSkewMs(): number {
    return this.shared.clockSkewMs();
  }

  updateSeq(): Promise<string> {
    return this.line.call(() => this.shared.updateSeq());
  }

  get(id: string): Promise<TaskDoc | null> {
    return this.line.call(() => this.shared.get(id));
  }

  getMany(ids: readonly string[]): Promise<Map<string, TaskDoc | null>> {
    return this.line.call(() => this.shared.getMany(ids));
  }

  write(writes: readonly TaskWrite[]): Promise<WriteOutcome[]> {
    return this.line.call(() => this.shared.write(writes));
  }

  findByStatus(worker: string, status: string, dateAtMost: string, limit: number, bookmark?: string): Promise<FindPage> {
    return this.line.call(() => this.shared.findByStatus(worker, status, dateAtMost, limit, bookmark));
  }

  findUnreachable(worker: string, limit: number): Promise<TaskDoc[]> {
    return this.line.call(() => this.shared.findUnreachable(worker, limit));
  }

  findExpiredLeases(worker: string, status: string, before: string, limit: number): Promise<TaskDoc[]> {
    return this.line.call(() => this.shared.findExpiredLeases(worker, status, before, limit));
  }

  follow(options: FeedOptions): Feed {
    return this.line.follow((deliver) => this.shared.follow({ ...options, onBatch: deliver(options.onBatch) }));
  }

  followDocs(options: DocsFeedOptions): Feed {
    return this.line.follow((deliver) => this.shared.followDocs({ ...options, onBatch: deliver(options.onBatch) }));
  }

  /** Closes this connection only: the database and the other instances' connections stay. */
  async close(): Promise<void> {
    if (this.line.killed) return never();
    this.line.closed = true;
    await this.line.stopFeeds();
  }
}

/**
 * The tasks an instance's tasks wait for (`after`), read and followed: the other half of
 * task/dependencies.ts. The worker says which tasks each of its waiting tasks needs (`watch`);
 * this reads them once (`getMany`), then follows their changes through a `_changes` feed of
 * those ids alone (`_doc_ids`, built into both servers: no couchjs, no design document), and
 * calls `onChange` with the waiting tasks to decide again when one of them changes. No polling:
 * a dependency that finishes wakes its dependents through the feed.
 *
 * The feed follows a set of ids; when the set changes it is replaced by one for the new set,
 * from the last seq the old one handed over, so no change between the two is lost. Ids newly
 * watched are read after that seq was recorded, so a change made meanwhile comes through the
 * feed as well. A first feed (or one after the set was empty) starts from the database's
 * update_seq read before its ids, never from an old seq, so it never replays history.
 *
 * A dependency that does not exist is read again once after MISSING_RECHECK_MS before it counts
 * as missing: tasks created together (a script, one `_bulk_docs`) may be seen one by one.
 */
import type { Clock } from '../../clock';
import { toError } from '../../errors';
import type { Logger } from '../../log';
import type { Feed, TaskStore } from '../../store/types';
import { dependencyView, type DependencyView } from '../../task/dependencies';
import type { TaskDoc } from '../../types';

/** How long a missing dependency has to appear before its dependents go to `error`. */
export const MISSING_RECHECK_MS = 1000;
/** Changes of the watched set within this long make one new feed. */
const FEED_REFRESH_MS = 50;

export interface DependencyWatchOptions {
  store: TaskStore;
  clock: Clock;
  log: Logger;
  heartbeatMs: number;
  /** Tasks whose dependencies changed (or were read): decide them again. */
  onChange(taskIds: string[]): void;
}

export class DependencyWatch {
  /** What each read dependency is; `null`: it does not exist. */
  private readonly views = new Map<string, DependencyView | null>();
  /** Waiting task → the ids it needs. */
  private readonly needs = new Map<string, Set<string>>();
  /** Dependency id → the waiting tasks that need it. */
  private readonly neededBy = new Map<string, Set<string>>();
  /** Dependencies read once and not found: when (local clock). */
  private readonly missingSince = new Map<string, number>();
  private readonly toRead = new Set<string>();
  private reading: Promise<void> = Promise.resolve();
  private readScheduled = false;
  private feed: Feed | undefined;
  private feedIds = '';
  /** The seq a new feed starts from when there is none to take it from. */
  private baseSeq: string | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private readonly recheckTimers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly options: DependencyWatchOptions) {}

  /** What dependency `id` is, as last read: undefined when not (yet) known. */
  readonly lookup = (id: string): DependencyView | null | undefined => this.views.get(id);

  /** Tasks waiting for dependencies now. */
  get waitingCount(): number {
    return this.needs.size;
  }

  /** Task `taskId` needs `ids` (its pending dependencies, and those still to be read). */
  watch(taskId: string, ids: readonly string[]): void {
    if (this.stopped) return;
    const before = this.needs.get(taskId);
    const wanted = new Set(ids);
    if (before && before.size === wanted.size && [...wanted].every((id) => before.has(id))) {
      this.readUnknown(ids);
      return;
    }
    this.unlink(taskId);
    this.needs.set(taskId, wanted);
    for (const id of wanted) {
      let tasks = this.neededBy.get(id);
      if (!tasks) this.neededBy.set(id, (tasks = new Set()));
      tasks.add(taskId);
    }
    this.readUnknown(ids);
    this.scheduleFeedRefresh();
  }

  /** Task `taskId` waits for nothing any more (it was scheduled, failed, dropped...). */
  unwatch(taskId: string): void {
    if (!this.needs.has(taskId)) return;
    this.unlink(taskId);
    this.scheduleFeedRefresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) this.options.clock.clearTimeout(this.refreshTimer);
    for (const timer of this.recheckTimers) this.options.clock.clearTimeout(timer);
    this.recheckTimers.clear();
    await this.refreshing.catch(() => undefined);
    await this.feed?.stop();
    this.feed = undefined;
    await this.reading.catch(() => undefined);
  }

  private unlink(taskId: string): void {
    for (const id of this.needs.get(taskId) ?? []) {
      const tasks = this.neededBy.get(id);
      tasks?.delete(taskId);
      if (tasks && tasks.size === 0) {
        this.neededBy.delete(id);
        this.views.delete(id);
        this.missingSince.delete(id);
      }
    }
    this.needs.delete(taskId);
  }

  private readUnknown(ids: readonly string[]): void {
    for (const id of ids) if (!this.views.has(id) && !this.missingSince.has(id)) this.toRead.add(id);
    if (this.toRead.size === 0 || this.readScheduled) return;
    this.readScheduled = true;
    // Reads of one turn (a batch of tasks from the feed) go as one request.
    queueMicrotask(() => {
      this.readScheduled = false;
      this.reading = this.reading.then(() => this.readPending());
    });
  }

  private async readPending(): Promise<void> {
    const ids = [...this.toRead].filter((id) => this.neededBy.has(id));
    this.toRead.clear();
    if (ids.length === 0 || this.stopped) return;
    try {
      // Recorded before the read: the feed that will follow these ids starts no later.
      if (this.feed === undefined && this.baseSeq === undefined) this.baseSeq = await this.options.store.updateSeq();
      const docs = await this.options.store.getMany(ids);
      this.apply([...docs].map(([id, doc]) => ({ id, doc })), true);
    } catch (err) {
      if (this.stopped) return;
      this.options.log.warn(`reading ${ids.length} awaited task(s) failed (${toError(err).message}); trying again`);
      for (const id of ids) this.toRead.add(id);
      const timer = this.options.clock.setTimeout(() => {
        this.recheckTimers.delete(timer);
        this.readUnknown([]);
        if (!this.readScheduled && this.toRead.size > 0) this.reading = this.reading.then(() => this.readPending());
      }, MISSING_RECHECK_MS);
      this.recheckTimers.add(timer);
    }
  }

  /** Documents read or fed: views updated, their waiting tasks decided again. */
  private apply(found: Array<{ id: string; doc: TaskDoc | null }>, fromRead: boolean): void {
    if (this.stopped) return;
    const touched = new Set<string>();
    for (const { id, doc } of found) {
      if (!this.neededBy.has(id)) continue;
      const view = dependencyView(doc);
      if (view === null && !this.confirmMissing(id, fromRead)) continue;
      this.views.set(id, view);
      if (view !== null) this.missingSince.delete(id);
      for (const taskId of this.neededBy.get(id) ?? []) touched.add(taskId);
    }
    if (touched.size > 0) this.options.onChange([...touched]);
  }

  /** A dependency not found: true once it was not found twice, MISSING_RECHECK_MS apart. */
  private confirmMissing(id: string, fromRead: boolean): boolean {
    const since = this.missingSince.get(id);
    const nowMs = this.options.clock.now();
    if (since !== undefined && nowMs - since >= MISSING_RECHECK_MS) return true;
    // A deletion seen in the feed is as good as a read.
    if (!fromRead && this.views.get(id)) return true;
    if (since === undefined) this.missingSince.set(id, nowMs);
    const timer = this.options.clock.setTimeout(() => {
      this.recheckTimers.delete(timer);
      if (!this.neededBy.has(id) || this.views.has(id)) return;
      this.toRead.add(id);
      this.reading = this.reading.then(() => this.readPending());
    }, MISSING_RECHECK_MS);
    this.recheckTimers.add(timer);
    return false;
  }

  private scheduleFeedRefresh(): void {
    if (this.stopped || this.refreshTimer) return;
    this.refreshTimer = this.options.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      this.refreshing = this.refreshing.then(() => this.refreshFeed()).catch((err: unknown) => {
        this.options.log.warn(`following awaited tasks failed: ${toError(err).message}`);
      });
    }, FEED_REFRESH_MS);
  }

  /** One feed for the ids needed now, from the seq the previous one reached. */
  private async refreshFeed(): Promise<void> {
    const ids = [...this.neededBy.keys()].sort();
    const key = ids.join('\u0000');
    if (key === this.feedIds || this.stopped) return;
    const old = this.feed;
    this.feed = undefined;
    this.feedIds = key;
    if (old) {
      await old.stop();
      this.baseSeq = old.lastSeq;
    }
    if (ids.length === 0) {
      // Nothing to follow: the next feed starts from a fresh seq, not an old one.
      this.baseSeq = undefined;
      return;
    }
    // Reads of the new ids record a seq first when no feed runs; wait for them.
    await this.reading.catch(() => undefined);
    const since = this.baseSeq ?? (await this.options.store.updateSeq());
    if (this.stopped) return;
    this.feed = this.options.store.followDocs({
      ids,
      since,
      heartbeatMs: this.options.heartbeatMs,
      onBatch: (batch) => this.apply(batch.docs.map((doc) => ({ id: doc._id, doc: doc._deleted ? null : doc })), false),
      onReconnect: () => this.rereadAll(),
    });
  }

  /** The feed reconnected: a hint that something may have been missed; read every watched task again. */
  private rereadAll(): void {
    for (const id of this.neededBy.keys()) if (!this.missingSince.has(id)) this.toRead.add(id);
    this.readUnknown([]);
  }
}

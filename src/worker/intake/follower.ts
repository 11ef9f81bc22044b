/**
 * Brings task documents to the worker. The `_changes` feed is a hint that wakes the worker;
 * the queries are the truth. So:
 * - cold start records `update_seq` first, then queries what is due, then follows the feed
 *   from the recorded seq: a change made during the query arrives through the feed;
 * - after every feed reconnect, and every quarter horizon, the window is queried again, so a
 *   missed change costs latency, never a task;
 * - the lease sweep finds tasks whose holder died (an index on `lease.expires_at`).
 * Only tasks due within the horizon are read: the worker never reads all tasks.
 */
import type { Clock } from '../../clock';
import type { Logger } from '../../log';
import type { Feed, TaskStore } from '../../store/types';
import type { TaskDoc } from '../../types';

/**
 * `date` strings are compared as text by the index. An extended ISO date with an offset can
 * be up to 14 h earlier (in UTC) than its text says, so windows reach 14 h further in text
 * and the worker sorts out the real instants.
 */
export const ZONE_MARGIN_MS = 14 * 3600_000;
const PAGE_SIZE = 1000;
/** The latest date an extended ISO string can spell; used as "no upper bound". */
const END_OF_TEXT_DATES = '9999-12-31T23:59:59.999Z';

export interface FollowerOptions {
  store: TaskStore;
  worker: string;
  /** This instance: its feed leaves out the echo of its own claims (store/changes-request.ts, feedShows). */
  instance: string;
  clock: Clock;
  log: Logger;
  horizonMs: number;
  leaseMs: number;
  heartbeatMs: number;
  /**
   * Every document found, by any path. What it returns, the feed waits for before its next read
   * (the worker's pace during a burst); it must never reject.
   */
  onDocs(docs: TaskDoc[]): void | Promise<void>;
}

export class Follower {
  private feed: Feed | undefined;
  private windowTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;

  constructor(private readonly options: FollowerOptions) {}

  /** Resolves once the first window is loaded and the feed is being followed. */
  async start(): Promise<{ since: string }> {
    const { store, worker, heartbeatMs } = this.options;
    const since = await store.updateSeq();
    await this.refreshWindow();
    if (this.stopped) return { since };
    this.feed = store.follow({
      worker,
      instance: this.options.instance,
      since,
      heartbeatMs,
      onBatch: (batch) => (batch.docs.length > 0 ? this.options.onDocs(batch.docs) : undefined),
      onReconnect: () => {
        this.options.log.info('changes feed reconnected; querying the window again');
        void this.refreshWindow();
      },
    });
    this.scheduleWindow();
    this.scheduleSweep();
    return { since };
  }

  get lastSeq(): string | undefined {
    return this.feed?.lastSeq;
  }

  /** Query every task of this worker that is due within the horizon or needs an answer. */
  refreshWindow(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.queryWindow();
      } while (this.refreshAgain && !this.stopped);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.windowTimer) this.options.clock.clearTimeout(this.windowTimer);
    if (this.sweepTimer) this.options.clock.clearTimeout(this.sweepTimer);
    await this.feed?.stop();
    await this.refreshing?.catch(() => undefined);
  }

  private async queryWindow(): Promise<void> {
    const { store, horizonMs } = this.options;
    const windowEnd = new Date(store.dbNow() + horizonMs + ZONE_MARGIN_MS).toISOString();
    // Cancels are answered whatever their date; the others only when due soon. Runs whose
    // holder died are the lease sweep's.
    await this.queryStatus('cancel', END_OF_TEXT_DATES);
    for (const status of ['waiting', 'reschedule', 'scheduled']) {
      if (this.stopped) return;
      await this.queryStatus(status, windowEnd);
    }
    if (this.stopped) return;
    // Tasks without a status, and malformed ones, are in no Mango index: without this they
    // would wait forever.
    const unreachable = await store.findUnreachable(this.options.worker, PAGE_SIZE);
    if (unreachable.length > 0) this.options.onDocs(unreachable);
    await this.sweepLeases();
  }

  private async queryStatus(status: string, dateAtMost: string): Promise<void> {
    const { store, worker } = this.options;
    let bookmark: string | undefined;
    do {
      if (this.stopped) return;
      const page = await store.findByStatus(worker, status, dateAtMost, PAGE_SIZE, bookmark);
      if (page.docs.length > 0) this.options.onDocs(page.docs);
      bookmark = page.bookmark;
    } while (bookmark);
  }

  private async sweepLeases(): Promise<void> {
    const { store, worker } = this.options;
    const now = new Date(store.dbNow()).toISOString();
    for (const status of ['running', 'scheduled', 'cancel']) {
      if (this.stopped) return;
      const docs = await store.findExpiredLeases(worker, status, now, PAGE_SIZE);
      if (docs.length > 0) this.options.onDocs(docs);
    }
  }

  private scheduleWindow(): void {
    if (this.stopped) return;
    const every = Math.max(1000, Math.floor(this.options.horizonMs / 4));
    this.windowTimer = this.options.clock.setTimeout(() => {
      this.refreshWindow()
        .catch((err: Error) => this.options.log.warn(`window query failed: ${err.message}`))
        .finally(() => this.scheduleWindow());
    }, every);
  }

  private scheduleSweep(): void {
    if (this.stopped) return;
    // A dead holder's task is taken over within lease + one sweep.
    const every = Math.min(5000, Math.max(250, Math.floor(this.options.leaseMs / 4)));
    this.sweepTimer = this.options.clock.setTimeout(() => {
      this.sweepLeases()
        .catch((err: Error) => this.options.log.warn(`lease sweep failed: ${err.message}`))
        .finally(() => this.scheduleSweep());
    }, every);
  }
}

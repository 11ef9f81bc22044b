/**
 * An instance's link to the control database (`<db>_control`): it writes the instance's own
 * heartbeat document, and follows every change there to learn
 * - which instances of its worker name are alive (membership.ts: the split of the tasks),
 * - whether its worker name is paused (`pause:<worker>`: no new run starts),
 * - users' requests about a task it holds (`request:...`: a cancel, delete, reschedule or pause
 *   that keeps losing the race against this instance's own writes of a fast task).
 *
 * Without the control database (created by `after init`; an older database lacks it) the
 * instance works alone: it takes every task as its own share, never paused, and tries again
 * every heartbeat interval.
 */
import * as os from 'node:os';
import { CouchRequestError, toError } from '../../errors';
import { formatDuration } from '../../format-duration';
import type { Logger } from '../../log';
import { believedIntervalMs, DEFAULT_INSTANCE_HEARTBEAT_MS, INSTANCE_PREFIX, REQUEST_PREFIX, instanceDocId, isPausing, parseRequest, pauseDocId, type InstanceDoc, type TaskRequest } from '../../store/schema';
import type { ControlDoc, ControlStore, Feed } from '../../store/types';
import { Membership } from './membership';

export interface ControlLinkOptions {
  store: ControlStore;
  worker: string;
  instance: string;
  log: Logger;
  /** Database time, epoch ms. */
  dbNow(): number;
  /** How often the instance document is rewritten. */
  heartbeatIntervalMs: number;
  /** The pid the instance document shows. */
  pid: number;
  /** The `_changes` heartbeat of the control feed. */
  feedHeartbeatMs: number;
  /** What the heartbeat reports. */
  report(): Pick<InstanceDoc, 'running' | 'held' | 'throttled' | 'running_now'>;
  onMembershipChange(): void;
  onPauseChange(paused: boolean): void;
  onRequest(request: TaskRequest): void;
}

export class ControlLink {
  readonly membership: Membership;
  private pausedNow = false;
  private feed: Feed | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private rev: string | undefined;
  private readonly startedAt: string;
  private stopped = false;
  private connected = false;
  private ownHeartbeatSeen = false;
  private missingReported = false;
  /** Instance documents whose heartbeat was dated too far ahead, already reported (once each). */
  private readonly futureReported = new Set<string>();
  private beating: Promise<void> = Promise.resolve();

  constructor(private readonly options: ControlLinkOptions) {
    this.membership = new Membership(options.instance);
    this.startedAt = new Date(options.dbNow()).toISOString();
  }

  get paused(): boolean {
    return this.pausedNow;
  }

  owns(id: string): boolean {
    return this.membership.owns(id);
  }

  /**
   * The other instances can have seen this one: its heartbeat came back through the control
   * feed (so the database holds it and feeds deliver it), or there is no control database and
   * it works alone. Rate limits split among the instances wait for it (flow-queue.ts).
   */
  get announced(): boolean {
    return this.ownHeartbeatSeen || !this.connected;
  }

  /** Read the control database and follow it; never throws (the instance then works alone). */
  async start(): Promise<void> {
    await this.connect();
    this.beating = this.beat();
    await this.beating;
    this.scheduleBeat();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.beatTimer);
    await this.beating.catch(() => undefined);
    await this.feed?.stop();
    this.feed = undefined;
    if (this.rev === undefined) return;
    try {
      await this.options.store.remove(instanceDocId(this.options.worker, this.options.instance), this.rev);
    } catch (err) {
      this.options.log.warn(`instance document not deleted (${toError(err).message}); it will show as gone after ${3 * this.options.heartbeatIntervalMs} ms`);
    }
  }

  /** `instance` left a run lease expire: count it gone now (see Membership.suspect). */
  suspect(instance: string): void {
    if (this.membership.suspect(instance, this.options.dbNow())) this.options.onMembershipChange();
  }

  /** The membership as of now: stale heartbeats drop out. */
  refresh(): void {
    if (this.membership.refresh(this.options.dbNow())) this.options.onMembershipChange();
  }

  private async connect(): Promise<void> {
    const { store, log } = this.options;
    let snapshot: Awaited<ReturnType<ControlStore['snapshot']>>;
    try {
      snapshot = await store.snapshot();
    } catch (err) {
      if (!this.missingReported) {
        const missing = err instanceof CouchRequestError && err.code === 'E_DB_MISSING';
        log.warn(
          missing
            ? `the control database ${store.dbName} does not exist (run 'after init'): this instance takes every task as its own, and pauses and requests are not seen`
            : `cannot read the control database ${store.dbName} (${toError(err).message}); trying again`,
        );
        this.missingReported = true;
      }
      return;
    }
    if (this.missingReported) log.info(`control database ${store.dbName} found`);
    this.missingReported = false;
    this.connected = true;
    this.apply(snapshot.docs);
    this.feed = store.follow({
      since: snapshot.seq,
      heartbeatMs: this.options.feedHeartbeatMs,
      onBatch: (batch) => this.apply(batch.docs),
    });
  }

  private scheduleBeat(): void {
    if (this.stopped) return;
    this.beatTimer = setTimeout(() => {
      this.beating = (async () => {
        if (!this.connected) await this.connect();
        await this.beat();
        this.refresh();
      })().finally(() => this.scheduleBeat());
    }, this.options.heartbeatIntervalMs);
    this.beatTimer.unref?.();
  }

  private async beat(): Promise<void> {
    if (this.stopped || !this.connected) return;
    const { store, worker, instance, log } = this.options;
    const doc: InstanceDoc = {
      _id: instanceDocId(worker, instance),
      ...(this.rev ? { _rev: this.rev } : {}),
      type: 'instance',
      worker,
      instance,
      host: os.hostname(),
      pid: this.options.pid,
      started_at: this.startedAt,
      heartbeat_at: new Date(this.options.dbNow()).toISOString(),
      interval_ms: this.options.heartbeatIntervalMs,
      ...this.options.report(),
    };
    try {
      let result = await store.put(doc as unknown as ControlDoc);
      if (!result.ok) {
        // The answer to our last write was lost, or the document was restored: take its rev.
        const stored = await store.get(doc._id);
        result = await store.put({ ...doc, _rev: stored?._rev } as unknown as ControlDoc);
      }
      if (result.ok) this.rev = result.rev;
    } catch (err) {
      log.warn(`instance heartbeat not written (${toError(err).message}); trying again in ${this.options.heartbeatIntervalMs} ms`);
    }
  }

  private apply(docs: ControlDoc[]): void {
    const { worker } = this.options;
    let membershipTouched = false;
    let announcedNow = false;
    for (const doc of docs) {
      const id = doc._id;
      if (id.startsWith(`${INSTANCE_PREFIX}${worker}:`)) {
        const instance = id.slice(`${INSTANCE_PREFIX}${worker}:`.length);
        if (instance === this.options.instance) {
          if (!this.ownHeartbeatSeen && !doc._deleted) {
            this.ownHeartbeatSeen = true;
            announcedNow = true;
          }
          continue;
        }
        const heartbeatMs = typeof doc.heartbeat_at === 'string' ? Date.parse(doc.heartbeat_at) : NaN;
        const intervalMs = believedIntervalMs(typeof doc.interval_ms === 'number' ? doc.interval_ms : NaN, DEFAULT_INSTANCE_HEARTBEAT_MS);
        const seenAtMs = this.options.dbNow();
        if (doc._deleted || !Number.isFinite(heartbeatMs)) this.membership.observe({ instance, gone: true }, seenAtMs);
        else if (this.membership.observe({ instance, heartbeatMs, intervalMs }, seenAtMs) === 'future') this.reportFuture(id, String(doc.heartbeat_at), heartbeatMs - seenAtMs);
        membershipTouched = true;
      } else if (id === pauseDocId(worker)) {
        const paused = isPausing(doc);
        if (paused !== this.pausedNow) {
          this.pausedNow = paused;
          this.options.log.info(paused ? `worker ${worker} paused: no new run starts until it is resumed` : `worker ${worker} resumed`);
          this.options.onPauseChange(paused);
        }
      } else if (id.startsWith(REQUEST_PREFIX) && !doc._deleted) {
        const request = parseRequest(doc, worker);
        if (request) this.options.onRequest(request);
      }
    }
    if (membershipTouched) this.refresh();
    if (announcedNow && !this.stopped) this.options.onMembershipChange();
  }

  /** Once per document: a heartbeat dated ahead is a clock far off or a forged document, and it does not count. */
  private reportFuture(id: string, heartbeatAt: string, aheadMs: number): void {
    if (this.futureReported.has(id)) return;
    this.futureReported.add(id);
    this.options.log.warn(
      `instance document ${id} dates its heartbeat ${heartbeatAt}, ${formatDuration(aheadMs)} ahead of the database's clock: ignored, the instance does not count as live (a clock far off, or a document written by someone else)`,
    );
  }
}

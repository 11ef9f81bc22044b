/**
 * The ready queue of an instance under the rate and concurrency limits of config `limits`
 * (limiter.ts): due tasks wait here for a run slot, and a task whose limit has no room now
 * waits too, in its place, without holding back the tasks of another limit behind it.
 *
 * Tasks are kept in one ReadyQueue per *class*: the tasks of a job that has a limit of its own
 * (`"mailer/send_email"`), and the rest. `pop()` takes the best head (own share, priority,
 * date: ready-queue.ts) among the classes whose limits have room, and reserves a start in them;
 * a class without room is skipped and its tasks are *throttled*: they run later, in order, and
 * are never dropped. When the first class will have room again a timer calls `onAvailable`.
 *
 * Without limits for this worker name there is one class and no limiter: `pop()` is the
 * ReadyQueue's own.
 */
import { MAX_TIMER_STEP_MS, type Clock } from '../../clock';
import type { LimitConfig } from '../../config/types';
import { Limiter, shareOf, type LimitSpec } from './limiter';
import { ReadyQueue, readyBefore, type ReadyOrder } from './ready-queue';

/**
 * A joining instance uses no share of a rate until the others can have seen it and a whole
 * window has passed after that: its heartbeat has come back through its own control feed, and
 * the others' feeds bring it within about this long.
 */
export const JOIN_SETTLE_MS = 1000;

export interface FlowQueueOptions {
  worker: string;
  /** This instance's id (its rank among the live instances gives its share). */
  instance: string;
  /** config `limits`. */
  limits: Readonly<Record<string, LimitConfig>>;
  clock: Clock;
  /** A run is claimed this long before its date: a limit with room by then lets it go. */
  claimAheadMs: number;
  /** A limit has room again (a timer, a change of the live instances): pump. */
  onAvailable(): void;
  /** A task starts that had to wait for `limit` (once per task and wait). */
  onThrottled(id: string, limit: string, waitedMs: number): void;
}

interface TaskClass {
  queue: ReadyQueue;
  limiters: Limiter[];
  /** The last time this class had tasks and no room; tasks pushed before then were throttled. */
  blockedAtMs: number;
  blockedBy: string;
}

interface Permit {
  limiters: Limiter[];
  started: boolean;
}

/** The class of the tasks without a job limit of their own. */
const DEFAULT_CLASS = '';

export class FlowQueue {
  private readonly classes = new Map<string, TaskClass>();
  private readonly limiters: Limiter[] = [];
  /** Job name → its class (only jobs with a limit of their own). */
  private readonly jobClasses = new Set<string>();
  private readonly classOf = new Map<string, string>();
  private readonly pushedAtMs = new Map<string, number>();
  private readonly permits = new Map<string, Permit>();
  private wake: NodeJS.Timeout | undefined;
  private wakeAtMs = Infinity;
  private announced = false;
  private throttled = 0;

  constructor(private readonly options: FlowQueueOptions) {
    const { worker, limits } = options;
    const workerLimit = limits[worker] ? new Limiter(limitSpec(worker, limits[worker]!)) : undefined;
    if (workerLimit) this.limiters.push(workerLimit);
    this.classes.set(DEFAULT_CLASS, newClass(workerLimit ? [workerLimit] : []));
    const prefix = `${worker}/`;
    for (const [key, limit] of Object.entries(limits)) {
      if (!key.startsWith(prefix) || key.length === prefix.length) continue;
      const job = key.slice(prefix.length);
      const jobLimit = new Limiter(limitSpec(key, limit));
      this.limiters.push(jobLimit);
      this.jobClasses.add(job);
      this.classes.set(job, newClass(workerLimit ? [workerLimit, jobLimit] : [jobLimit]));
    }
  }

  /** This worker name has limits. */
  get limited(): boolean {
    return this.limiters.length > 0;
  }

  /** The config keys of the limits that apply to this worker name. */
  get limitKeys(): string[] {
    return this.limiters.map((limiter) => limiter.key);
  }

  /** Ready tasks waiting for a limit's room, as of the last `pop()`. */
  get throttledCount(): number {
    return this.throttled;
  }

  get size(): number {
    let size = 0;
    for (const taskClass of this.classes.values()) size += taskClass.queue.size;
    return size;
  }

  push(id: string, order: ReadyOrder, job: string): void {
    if (!this.limited) return this.defaultQueue().push(id, order);
    const name = this.jobClasses.has(job) ? job : DEFAULT_CLASS;
    const taskClass = this.classes.get(name)!;
    if (taskClass.queue.has(id)) return;
    this.classOf.set(id, name);
    this.pushedAtMs.set(id, this.options.clock.now());
    taskClass.queue.push(id, order);
  }

  remove(id: string): void {
    if (!this.limited) return this.defaultQueue().remove(id);
    const name = this.classOf.get(id);
    if (name === undefined) return;
    this.classes.get(name)!.queue.remove(id);
    this.classOf.delete(id);
    this.pushedAtMs.delete(id);
  }

  clear(): void {
    for (const taskClass of this.classes.values()) taskClass.queue.clear();
    this.classOf.clear();
    this.pushedAtMs.clear();
    this.throttled = 0;
    this.disarm();
  }

  /**
   * The next task to claim, its start reserved in its limits; undefined when no task is ready
   * or every ready one waits for a limit (a timer then calls onAvailable when one has room).
   */
  pop(): string | undefined {
    if (!this.limited) return this.defaultQueue().pop();
    const nowMs = this.options.clock.now();
    const horizonMs = nowMs + this.options.claimAheadMs;
    let best: { name: string; taskClass: TaskClass; head: ReadyOrder } | undefined;
    let wakeAtMs = Infinity;
    let throttled = 0;
    for (const [name, taskClass] of this.classes) {
      const head = taskClass.queue.peek();
      if (!head) continue;
      const { atMs, key } = this.roomAt(taskClass, nowMs);
      if (atMs > horizonMs) {
        taskClass.blockedAtMs = nowMs;
        taskClass.blockedBy = key;
        throttled += taskClass.queue.size;
        wakeAtMs = Math.min(wakeAtMs, atMs - this.options.claimAheadMs);
        continue;
      }
      if (!best || readyBefore(head, best.head)) best = { name, taskClass, head };
    }
    this.throttled = throttled;
    this.arm(wakeAtMs);
    if (!best) return undefined;
    const id = best.taskClass.queue.pop()!;
    for (const limiter of best.taskClass.limiters) limiter.reserve();
    this.permits.set(id, { limiters: best.taskClass.limiters, started: false });
    const pushedAtMs = this.pushedAtMs.get(id) ?? nowMs;
    this.classOf.delete(id);
    this.pushedAtMs.delete(id);
    if (best.taskClass.blockedAtMs >= pushedAtMs) this.options.onThrottled(id, best.taskClass.blockedBy, nowMs - pushedAtMs);
    return id;
  }

  /**
   * How long the claimed run of `id` must wait before its limits let it start: 0 when it may
   * start now (the live instances may have changed since it was claimed). A run that may start
   * must then start in the same turn, and `started` be called right after the job was called.
   */
  startWaitMs(id: string): number {
    const permit = this.permits.get(id);
    if (!permit || permit.started) return 0;
    const nowMs = this.options.clock.now();
    let atMs = nowMs;
    for (const limiter of permit.limiters) atMs = Math.max(atMs, limiter.startAvailableAt(nowMs));
    return atMs - nowMs;
  }

  /**
   * The run of `id` has started: its start is counted now, after the job was called, so the
   * time counted is never before the job's own reading of the clock.
   */
  started(id: string): void {
    const permit = this.permits.get(id);
    if (!permit || permit.started) return;
    const nowMs = this.options.clock.now();
    for (const limiter of permit.limiters) limiter.started(nowMs);
    permit.started = true;
  }

  /** The run of `id` ended, or was given up (a lost claim, a stop): its limits get the room back. */
  release(id: string): void {
    const permit = this.permits.get(id);
    if (!permit) return;
    this.permits.delete(id);
    for (const limiter of permit.limiters) limiter.release(permit.started);
  }

  /**
   * The live instances changed (or this one was announced: its heartbeat came back through the
   * control feed, or there is no control database and it works alone). Shares follow.
   */
  membershipChanged(live: readonly string[], announced: boolean): void {
    if (!this.limited) return;
    const nowMs = this.options.clock.now();
    const self = this.options.instance;
    const first = announced && !this.announced;
    this.announced = announced;
    for (const limiter of this.limiters) {
      const { rate, concurrency } = limiter.spec;
      if (!announced) {
        limiter.setShares(0, 0, nowMs);
        continue;
      }
      const rateShare = rate ? shareOf(rate.count, live, self) : 0;
      const concurrencyShare = concurrency !== undefined ? shareOf(concurrency, live, self) : 0;
      if (first && live.length === 1) limiter.setShares(rateShare, concurrencyShare, nowMs, true);
      else limiter.setShares(rateShare, concurrencyShare, first ? nowMs + JOIN_SETTLE_MS : nowMs);
    }
    this.options.onAvailable();
  }

  /** Stop the wake timer (the worker stops). */
  stop(): void {
    this.disarm();
  }

  private defaultQueue(): ReadyQueue {
    return this.classes.get(DEFAULT_CLASS)!.queue;
  }

  /** When every limit of the class has room (the latest of them), and which limit that is. */
  private roomAt(taskClass: TaskClass, nowMs: number): { atMs: number; key: string } {
    let atMs = nowMs;
    let key = taskClass.limiters[0]?.key ?? '';
    for (const limiter of taskClass.limiters) {
      const at = limiter.availableAt(nowMs);
      if (at > atMs) [atMs, key] = [at, limiter.key];
    }
    return { atMs, key };
  }

  private arm(atMs: number): void {
    if (!Number.isFinite(atMs)) return;
    if (this.wake && this.wakeAtMs <= atMs) return;
    this.disarm();
    this.wakeAtMs = atMs;
    this.wake = this.options.clock.setTimeout(() => {
      this.wake = undefined;
      this.wakeAtMs = Infinity;
      this.options.onAvailable();
    }, Math.min(MAX_TIMER_STEP_MS, Math.max(0, atMs - this.options.clock.now())));
  }

  private disarm(): void {
    if (this.wake) this.options.clock.clearTimeout(this.wake);
    this.wake = undefined;
    this.wakeAtMs = Infinity;
  }
}

function newClass(limiters: Limiter[]): TaskClass {
  return { queue: new ReadyQueue(), limiters, blockedAtMs: -Infinity, blockedBy: '' };
}

function limitSpec(key: string, limit: LimitConfig): LimitSpec {
  const spec: LimitSpec = { key };
  if (limit.rate) spec.rate = { count: limit.rate.count, periodMs: limit.rate.period_ms };
  if (limit.concurrency !== null) spec.concurrency = limit.concurrency;
  return spec;
}

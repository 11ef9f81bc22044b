/**
 * One rate or concurrency limit (config `limits`) as one instance applies it: its share of the
 * limit, the starts it made, and when it may start the next run. Pure apart from the times the
 * caller passes in (this instance's own clock: a share is counted in this process's windows).
 *
 * A limit holds for the worker name as a whole. Each live instance takes an integer share by its
 * rank among the live instances (sorted ids, the same list in every instance): 5/s over two
 * instances is 3 and 2, over three 2, 2 and 1. An instance whose share is 0 starts nothing of
 * that limit; the others run those tasks as backups (claim_grace_ms after their date).
 *
 * The rate is enforced as a sliding window: a run starts only if fewer than `share` of this
 * instance's starts fall in the `period` (plus WINDOW_MARGIN_MS) before it, so ANY window of one
 * period holds at most `share` of its starts, and the instances' shares add up to the limit.
 * A claim reserves its start (the claim is written before the run starts); the start is checked
 * just before the job is called and counted just after, in the same turn, with the clock read
 * after the call: a start counted is never earlier than the job's own reading of the clock, so
 * the window holds for the times the jobs see, whatever a pause (a GC) between the two.
 *
 * Shares change with the live instances. A smaller share applies at once; a larger one only
 * once every share this instance had during the last period allowed it: the starts made under
 * the old split are still in some window, and the instance that gave the share up (or the one
 * that just joined, see FlowLimits) may have used it there.
 */

/**
 * Added to every window: clocks read whole milliseconds, and a window of exactly one period
 * closed at both ends must never count `share + 1` starts.
 */
export const WINDOW_MARGIN_MS = 2;

export interface RateLimit {
  /** Starts per period (the limit for the whole worker name). */
  count: number;
  periodMs: number;
}

export interface LimitSpec {
  /** The config key: `mailer` or `mailer/send_email`. */
  key: string;
  rate?: RateLimit;
  /** Runs at once (the limit for the whole worker name). */
  concurrency?: number;
}

/** This instance's integer share of `total` by its rank among `live` (sorted ids). */
export function shareOf(total: number, live: readonly string[], self: string): number {
  const rank = live.indexOf(self);
  if (rank < 0 || live.length === 0) return 0;
  return Math.floor(total / live.length) + (rank < total % live.length ? 1 : 0);
}

export class Limiter {
  /** Start times in the current window, oldest first. */
  private starts: number[] = [];
  /** Runs claimed but not started yet. */
  private reserved = 0;
  /** Runs claimed or running. */
  private active = 0;
  /** Rate shares by the time they take effect, oldest first; none yet: 0. */
  private rateShares: Array<{ fromMs: number; share: number }> = [{ fromMs: -Infinity, share: 0 }];
  private concurrencyShare = 0;

  constructor(readonly spec: LimitSpec) {}

  get key(): string {
    return this.spec.key;
  }

  /**
   * This instance's shares from `fromMs` on. `fresh`: no earlier share counts (the instance is
   * alone, so nobody else used this limit in the window); otherwise a larger rate share waits
   * until the smaller ones have left the window.
   */
  setShares(rateShare: number, concurrencyShare: number, fromMs: number, fresh = false): void {
    this.concurrencyShare = concurrencyShare;
    if (fresh) this.rateShares = [{ fromMs: -Infinity, share: rateShare }];
    else if (this.rateShares[this.rateShares.length - 1]!.share !== rateShare) this.rateShares.push({ fromMs, share: rateShare });
  }

  /** The rate share in force at `nowMs`: the least of the shares held during the window before it. */
  rateShareAt(nowMs: number): number {
    if (!this.spec.rate) return Infinity;
    const windowStart = nowMs - this.windowMs();
    let least = Infinity;
    for (let i = this.rateShares.length - 1; i >= 0; i--) {
      const entry = this.rateShares[i]!;
      if (entry.fromMs > nowMs) continue;
      least = Math.min(least, entry.share);
      if (entry.fromMs <= windowStart) break;
    }
    return least === Infinity ? 0 : least;
  }

  /**
   * The earliest time (≥ nowMs) a run of this limit may be claimed: now when there is room,
   * Infinity when only a run ending or a reserved one starting can make room.
   */
  availableAt(nowMs: number): number {
    if (this.spec.concurrency !== undefined && this.active >= this.concurrencyShare) return Infinity;
    return this.rateRoomAt(nowMs, this.reserved + 1);
  }

  /** A run is claimed: it holds a start until it starts or is given up. */
  reserve(): void {
    this.reserved += 1;
    this.active += 1;
  }

  /**
   * The earliest time (≥ nowMs) a reserved run may start (the shares may have shrunk since it
   * was reserved). Only starts count here: they are counted one by one as they happen
   * (`started`), so the window never holds more than the share.
   */
  startAvailableAt(nowMs: number): number {
    return this.rateRoomAt(nowMs, 1);
  }

  /** A reserved run starts now. */
  started(nowMs: number): void {
    this.reserved = Math.max(0, this.reserved - 1);
    if (this.spec.rate) this.starts.push(nowMs);
  }

  /** The run ended, or was given up before it started. */
  release(started: boolean): void {
    if (!started) this.reserved = Math.max(0, this.reserved - 1);
    this.active = Math.max(0, this.active - 1);
  }

  private windowMs(): number {
    return (this.spec.rate?.periodMs ?? 0) + WINDOW_MARGIN_MS;
  }

  /**
   * When this instance's window has room for `wanted` more starts (its reservations included):
   * the `(count + wanted - share)`-th oldest start in the window must have left it, or a larger
   * share have come into force.
   */
  private rateRoomAt(nowMs: number, wanted: number): number {
    if (!this.spec.rate || wanted <= 0) return nowMs;
    const windowMs = this.windowMs();
    this.forgetBefore(nowMs - windowMs);
    const share = this.rateShareAt(nowMs);
    const mustLeave = this.starts.length + wanted - share;
    if (mustLeave <= 0) return nowMs;
    const leavesAt = wanted <= share ? this.starts[mustLeave - 1]! + windowMs : Infinity;
    return Math.max(nowMs + 1, Math.min(leavesAt, this.nextShareChange(nowMs)));
  }

  /** The next moment the share in force may change: a share taking effect, or one leaving the window. */
  private nextShareChange(nowMs: number): number {
    let next = Infinity;
    for (const entry of this.rateShares) {
      for (const at of [entry.fromMs, entry.fromMs + this.windowMs()]) if (at > nowMs && at < next) next = at;
    }
    return next;
  }

  /** Starts and shares that left the window (all but the share in force then) are forgotten. */
  private forgetBefore(windowStart: number): void {
    let drop = 0;
    while (drop < this.starts.length && this.starts[drop]! <= windowStart) drop++;
    if (drop > 0) this.starts.splice(0, drop);
    while (this.rateShares.length > 1 && this.rateShares[1]!.fromMs <= windowStart) this.rateShares.shift();
  }
}

/**
 * The database's clock, estimated from the `Date` header of its responses. Leases are
 * judged by the database clock (docs/spec.md §7 "Clocks"), so every instance must agree on it even
 * when the machines' own clocks do not.
 *
 * A `Date` header has one-second resolution: a response stamped D was produced at a
 * database time in [D, D + 1000), at a local time between when its request left (sentAt)
 * and when its response arrived (receivedAt). So the offset (database − local) lies in
 * (D − receivedAt, D + 1000 − sentAt). Each sample cuts that interval further; responses
 * landing at different points of the database's second narrow it to a few milliseconds.
 * Apache CouchDB stamps its responses from a date refreshed once a second, so there D may be
 * up to a second older still (`staleMs`): the interval is (D − receivedAt, D + 2000 − sentAt),
 * and the estimate is good to about half a second, which leases of seconds allow.
 */
import type { ServerDateSample } from './wire-observer';

/** Beyond this, a worker warns that its clock disagrees with the database's (docs/spec.md §7). */
export const SKEW_WARNING_MS = 1000;

export class ClockSkewEstimator {
  /** Bounds of (database clock − local clock). */
  private lowerMs = -Infinity;
  private upperMs = Infinity;
  /** skewMs() for these bounds: read on every clock reading of the worker, changed only by a sample. */
  private skew = 0;

  /** Narrow the estimate with one response. */
  addSample(sample: ServerDateSample): void {
    const lower = sample.dateMs - sample.receivedAt;
    const upper = sample.dateMs + 1000 + (sample.staleMs ?? 0) - sample.sentAt;
    if (lower > this.upperMs || upper < this.lowerMs) {
      // Disjoint from everything seen so far: one of the clocks was stepped (NTP, a VM
      // resumed, drift adding up). Only the new sample describes the present.
      this.lowerMs = lower;
      this.upperMs = upper;
    } else {
      this.lowerMs = Math.max(this.lowerMs, lower);
      this.upperMs = Math.min(this.upperMs, upper);
    }
    this.skew = this.lowerMs <= 0 && this.upperMs >= 0 ? 0 : -Math.round((this.lowerMs + this.upperMs) / 2);
  }

  /** Whether any response has been seen. */
  get sampled(): boolean {
    return Number.isFinite(this.lowerMs);
  }

  /** How uncertain the estimate still is: the width of the interval, in ms. */
  get uncertaintyMs(): number {
    return this.sampled ? this.upperMs - this.lowerMs : Infinity;
  }

  /**
   * Local clock minus database clock (positive: this machine is ahead); 0 before any sample.
   * While the responses allow the clocks to agree, they are taken to agree: most machines run
   * NTP, and a slow first response (a 1.2 s round trip on a loaded machine) leaves an interval
   * so wide that its middle would put a synchronised database a second away. Otherwise the
   * middle of the interval.
   */
  skewMs(): number {
    return this.skew;
  }

  /** The database's time now, by the local clock corrected for the skew. */
  dbNow(localNow: number = Date.now()): number {
    return localNow - this.skew;
  }
}

/**
 * Decides when the skew deserves a log line: when it first passes SKEW_WARNING_MS, and again
 * whenever it has moved by more than that since the last warning; quiet otherwise, so a
 * stable skew is reported once, not on every response.
 */
export class SkewWarnings {
  private warnedAtMs: number | undefined;

  /** The line to log for this skew, or undefined when nothing changed worth saying. */
  check(skewMs: number): { level: 'warn' | 'info'; message: string } | undefined {
    if (Math.abs(skewMs) <= SKEW_WARNING_MS) {
      if (this.warnedAtMs === undefined) return undefined;
      this.warnedAtMs = undefined;
      return { level: 'info', message: `this machine's clock is now within ${SKEW_WARNING_MS} ms of the database's` };
    }
    if (this.warnedAtMs !== undefined && Math.abs(skewMs - this.warnedAtMs) <= SKEW_WARNING_MS) return undefined;
    this.warnedAtMs = skewMs;
    const direction = skewMs > 0 ? 'ahead of' : 'behind';
    return {
      level: 'warn',
      message: `this machine's clock is ${Math.abs(skewMs)} ms ${direction} the database's; leases are judged by the database clock`,
    };
  }
}

/**
 * Which instances of a worker name are alive, and which of them a task belongs to.
 *
 * Each instance rewrites its document in the control database every few seconds. An instance is
 * alive while this instance has *seen* its heartbeat move on within STALE_AFTER_BEATS of its
 * intervals, on this instance's clock (its estimate of the database's): a heartbeat counts from
 * when it was seen, or from the date it carries if that is earlier, never from a later date it
 * claims. Anyone who can write the control database can write an instance document, and before
 * issue 19 a document dated `2099-01-01` counted as live forever: it took a share of the tasks
 * (each ran only after the claim grace) and of every rate limit. Now such a document counts for
 * STALE_AFTER_BEATS intervals at most after it was seen, a date more than
 * HEARTBEAT_FUTURE_TOLERANCE_MS ahead is not counted at all (the control link logs it once),
 * and an interval longer than MAX_HEARTBEAT_INTERVAL_MS counts as that. Tasks are split among the live instances by rendezvous hashing (highest random weight):
 * a task belongs to the instance whose hash of (instance, task id) is highest. Every instance
 * computes the same owner from the same live set, and when an instance joins or leaves only the
 * tasks it wins or held move (CouchDB's replicator assigns jobs to nodes this way, mem3:owner).
 */
import { hash53 } from '../../hash';
import { isFutureHeartbeat, MAX_HEARTBEAT_INTERVAL_MS, STALE_AFTER_BEATS } from '../../store/schema';

export interface InstanceBeat {
  instance: string;
  /** Database time its document claims for its last heartbeat, epoch ms. */
  heartbeatMs: number;
  intervalMs: number;
}

/** What `observe` made of a heartbeat. */
export type BeatVerdict =
  /** It moved on: the instance is alive for STALE_AFTER_BEATS intervals from now. */
  | 'counted'
  /** The same (or an older) date as the last one seen: no sign of life. */
  | 'unchanged'
  /** Dated more than HEARTBEAT_FUTURE_TOLERANCE_MS ahead: not counted. */
  | 'future';

interface SeenBeat extends InstanceBeat {
  /** When this instance saw the heartbeat move on, on its clock (database time estimate). */
  seenAtMs: number;
}

export class Membership {
  private readonly beats = new Map<string, SeenBeat>();
  /** Instance → database time when it was found dead before its heartbeat went stale. */
  private readonly suspects = new Map<string, number>();
  private liveIds: string[];

  constructor(private readonly self: string) {
    this.liveIds = [self];
  }

  /** The live instances, sorted; this instance is always among them. */
  get live(): readonly string[] {
    return this.liveIds;
  }

  /**
   * A heartbeat document seen at `seenAtMs` (this instance's clock), or, with `gone`, an
   * instance that stopped cleanly. Only a heartbeat that moved on counts as a sign of life.
   */
  observe(beat: InstanceBeat | { instance: string; gone: true }, seenAtMs: number): BeatVerdict | 'gone' {
    if ('gone' in beat) {
      this.beats.delete(beat.instance);
      this.suspects.delete(beat.instance);
      return 'gone';
    }
    if (isFutureHeartbeat(beat.heartbeatMs, seenAtMs)) return 'future';
    const previous = this.beats.get(beat.instance);
    if (previous !== undefined && beat.heartbeatMs <= previous.heartbeatMs) return 'unchanged';
    this.beats.set(beat.instance, { ...beat, intervalMs: Math.min(beat.intervalMs, MAX_HEARTBEAT_INTERVAL_MS), seenAtMs });
    return 'counted';
  }

  /**
   * Evidence that `instance` is gone although its last heartbeat is recent: a run lease of it
   * expired (a live instance renews it every third of the lease). It counts as gone until a
   * heartbeat seen after `nowMs` shows otherwise. True when the live set changed.
   */
  suspect(instance: string, nowMs: number): boolean {
    if (instance === this.self || !this.liveIds.includes(instance)) return false;
    this.suspects.set(instance, nowMs);
    return this.refresh(nowMs);
  }

  /** Recompute the live set at database time `nowMs`; true when it changed. */
  refresh(nowMs: number): boolean {
    const live = new Set([this.self]);
    for (const beat of this.beats.values()) {
      const suspectedAt = this.suspects.get(beat.instance);
      if (suspectedAt !== undefined && beat.seenAtMs > suspectedAt) this.suspects.delete(beat.instance);
      else if (suspectedAt !== undefined) continue;
      // From when it was seen, or from its own date when that is earlier (an old document read at start).
      const beatMs = Math.min(beat.seenAtMs, beat.heartbeatMs);
      if (nowMs - beatMs < STALE_AFTER_BEATS * beat.intervalMs) live.add(beat.instance);
    }
    const next = [...live].sort();
    const changed = next.length !== this.liveIds.length || next.some((id, i) => id !== this.liveIds[i]);
    this.liveIds = next;
    return changed;
  }

  /** The live instance task `id` belongs to. */
  ownerOf(id: string): string {
    return rendezvousOwner(this.liveIds, id);
  }

  owns(id: string): boolean {
    return this.liveIds.length === 1 || this.ownerOf(id) === this.self;
  }
}

/** The member with the highest weight for `key`; ties (never in practice) go to the first. */
export function rendezvousOwner(members: readonly string[], key: string): string {
  let best = members[0]!;
  let bestWeight = -1;
  for (const member of members) {
    const weight = hash53(`${member}\u0000${key}`);
    if (weight > bestWeight) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

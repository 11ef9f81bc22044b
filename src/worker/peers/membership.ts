/**
 * Which instances of a worker name are alive, and which of them a task belongs to.
 *
 * Each instance rewrites its document in the control database every few seconds; one whose
 * last heartbeat is older than STALE_AFTER_BEATS of its intervals (by the database's clock) is
 * gone. Tasks are split among the live instances by rendezvous hashing (highest random weight):
 * a task belongs to the instance whose hash of (instance, task id) is highest. Every instance
 * computes the same owner from the same live set, and when an instance joins or leaves only the
 * tasks it wins or held move (CouchDB's replicator assigns jobs to nodes this way, mem3:owner).
 */
import { hash53 } from '../../hash';
import { STALE_AFTER_BEATS } from '../../store/schema';

export interface InstanceBeat {
  instance: string;
  /** Database time of its last heartbeat, epoch ms. */
  heartbeatMs: number;
  intervalMs: number;
}

export class Membership {
  private readonly beats = new Map<string, InstanceBeat>();
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

  /** A heartbeat seen (or, with `gone`, an instance that stopped cleanly). */
  observe(beat: InstanceBeat | { instance: string; gone: true }): void {
    if ('gone' in beat) {
      this.beats.delete(beat.instance);
      this.suspects.delete(beat.instance);
    } else {
      this.beats.set(beat.instance, beat);
    }
  }

  /**
   * Evidence that `instance` is gone although its last heartbeat is recent: a run lease of it
   * expired (a live instance renews it every third of the lease). It counts as gone until a
   * heartbeat written after `nowMs` shows otherwise. True when the live set changed.
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
      if (suspectedAt !== undefined && beat.heartbeatMs > suspectedAt) this.suspects.delete(beat.instance);
      else if (suspectedAt !== undefined) continue;
      if (nowMs - beat.heartbeatMs < STALE_AFTER_BEATS * beat.intervalMs) live.add(beat.instance);
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

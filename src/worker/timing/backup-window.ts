/**
 * How many backups an instance claims at once. A backup is another live instance's task still
 * unclaimed past its grace: its owner is busy. Backups are claimed a few at a time, one more at
 * once with each one won, up to MAX_BACKUP_WINDOW: a busy owner catches up at the end of its
 * backlog, where a thief that took many at once would lose most of them to it. A backup lost to
 * its owner closes the window to one and pauses backups for a grace period. (An owner that is
 * gone is no owner: its share is split among the live instances and claimed as their own.)
 */

/** The most backups claimed at once. */
export const MAX_BACKUP_WINDOW = 8;

export class BackupWindow {
  private pausedUntilMs = 0;
  private size = 1;
  private claiming = 0;

  /** A backup may be claimed now. */
  open(nowMs: number): boolean {
    return nowMs >= this.pausedUntilMs && this.claiming < this.size;
  }

  /** Backups wait until then after one was lost to its owner (0: they do not wait). */
  pausedUntil(nowMs: number): number {
    return nowMs < this.pausedUntilMs ? this.pausedUntilMs : 0;
  }

  claimSent(): void {
    this.claiming += 1;
  }

  /** A backup's claim came back: won, the window opens by one (up to `concurrency`); lost, it closes and pauses. */
  claimAnswered(won: boolean, nowMs: number, concurrency: number, graceMs: number): void {
    this.claiming -= 1;
    if (won) {
      this.size = Math.min(concurrency, MAX_BACKUP_WINDOW, this.size + 1);
    } else {
      // Another instance was first to a task of its own share: its owner is at work there.
      this.size = 1;
      this.pausedUntilMs = nowMs + graceMs;
    }
  }
}

/**
 * Task counts by worker and status kept as the tasks change, inside the embedded server, in a
 * `_local/after-counts` document of the tasks database (local documents are in no `_changes`
 * feed and no view: no worker sees it). PouchDB keeps no reductions in its views, so a grouped
 * count reads every row: at 100,000 tasks that is most of a second for each `after status` and
 * each dashboard refresh. Here each change is counted once, when the index warmer looks at the
 * database (index-warmer.ts): the key of every task is remembered, so a task that moves from
 * `waiting` to `done` leaves one count and enters the other.
 */

/** The PouchDB database methods counting uses. */
export interface CountableDb {
  changes(options: { since: number | string; limit: number; include_docs: true }): Promise<{
    results: Array<{ id: string; deleted?: boolean; doc?: { worker?: unknown; status?: unknown } }>;
    last_seq: number | string;
  }>;
  get(id: string): Promise<{ _rev?: string }>;
  put(doc: Record<string, unknown>): Promise<{ rev: string }>;
}

export const COUNTS_DOC_ID = '_local/after-counts';

/** What `_local/after-counts` holds. */
export interface CountsDoc {
  /** The database's update sequence the counts include. */
  seq: number | string;
  /** [worker, status, count], every pair with a count above 0. */
  counts: Array<[string, string, number]>;
}

/** Changes read per request. */
const PAGE = 2000;

export class CountsKeeper {
  /** Each task's key (`worker\0status`) as last counted. */
  private readonly keys = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  private seq: number | string = 0;
  private rev: string | undefined;

  constructor(private readonly db: CountableDb) {}

  /** Count every change since the last call, then write the document (once). */
  async catchUp(): Promise<void> {
    let moved = false;
    for (;;) {
      const page = await this.db.changes({ since: this.seq, limit: PAGE, include_docs: true });
      for (const change of page.results) this.count(change);
      moved ||= page.results.length > 0;
      this.seq = page.last_seq;
      if (page.results.length < PAGE) break;
      // Let the server answer requests between pages of a long first count.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (moved || this.rev === undefined) await this.write();
  }

  private count(change: { id: string; deleted?: boolean; doc?: { worker?: unknown; status?: unknown } }): void {
    if (change.id.startsWith('_design/')) return;
    const before = this.keys.get(change.id);
    if (before !== undefined) this.add(before, -1);
    const doc = change.doc;
    if (change.deleted || !doc || typeof doc.worker !== 'string') {
      this.keys.delete(change.id);
      return;
    }
    // No status means waiting (SPEC §3).
    const key = `${doc.worker}\u0000${doc.status === undefined || doc.status === null ? 'waiting' : String(doc.status)}`;
    this.keys.set(change.id, key);
    this.add(key, 1);
  }

  private add(key: string, n: number): void {
    const next = (this.counts.get(key) ?? 0) + n;
    if (next > 0) this.counts.set(key, next);
    else this.counts.delete(key);
  }

  private async write(): Promise<void> {
    if (this.rev === undefined) this.rev = await this.db.get(COUNTS_DOC_ID).then((doc) => doc._rev, () => undefined);
    const counts = [...this.counts.entries()].map(([key, n]): [string, string, number] => {
      const [worker, status] = key.split('\u0000') as [string, string];
      return [worker, status, n];
    });
    const body: Record<string, unknown> = { _id: COUNTS_DOC_ID, seq: this.seq, counts };
    if (this.rev !== undefined) body._rev = this.rev;
    this.rev = (await this.db.put(body)).rev;
  }
}

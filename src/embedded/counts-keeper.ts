/**
 * Task counts by worker and status, and by job name, kept as the tasks change, inside the embedded server, in a
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
    results: Array<{ id: string; deleted?: boolean; doc?: CountedDoc }>;
    last_seq: number | string;
  }>;
  get(id: string): Promise<{ _rev?: string }>;
  put(doc: Record<string, unknown>): Promise<{ rev: string }>;
}

export const COUNTS_DOC_ID = '_local/after-counts';

/** The fields of a document that are counted. */
export interface CountedDoc {
  worker?: unknown;
  status?: unknown;
  job?: unknown;
}

/** What `_local/after-counts` holds. */
export interface CountsDoc {
  /** The database's update sequence the counts include. */
  seq: number | string;
  /** [worker, status, count], every pair with a count above 0. */
  counts: Array<[string, string, number]>;
  /** [job name, count]: tasks by job, for the dashboard's search and filters. */
  jobs: Array<[string, number]>;
}

/** Changes read per request. */
const PAGE = 2000;

export class CountsKeeper {
  /** Each task's key (`worker\0status`) as last counted. */
  private readonly keys = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  /** Each task's job name as last counted. */
  private readonly jobOf = new Map<string, string>();
  private readonly jobs = new Map<string, number>();
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

  private count(change: { id: string; deleted?: boolean; doc?: CountedDoc }): void {
    if (change.id.startsWith('_design/')) return;
    const before = this.keys.get(change.id);
    if (before !== undefined) add(this.counts, before, -1);
    const job = this.jobOf.get(change.id);
    if (job !== undefined) add(this.jobs, job, -1);
    const doc = change.doc;
    if (change.deleted || !doc || typeof doc.worker !== 'string') {
      this.keys.delete(change.id);
      this.jobOf.delete(change.id);
      return;
    }
    // No status means waiting (SPEC §3).
    const key = `${doc.worker}\u0000${doc.status === undefined || doc.status === null ? 'waiting' : String(doc.status)}`;
    this.keys.set(change.id, key);
    add(this.counts, key, 1);
    const name = typeof doc.job === 'string' ? doc.job : typeof (doc.job as { name?: unknown } | null)?.name === 'string' ? (doc.job as { name: string }).name : undefined;
    if (name === undefined) this.jobOf.delete(change.id);
    else {
      this.jobOf.set(change.id, name);
      add(this.jobs, name, 1);
    }
  }

  private async write(): Promise<void> {
    if (this.rev === undefined) this.rev = await this.db.get(COUNTS_DOC_ID).then((doc) => doc._rev, () => undefined);
    const counts = [...this.counts.entries()].map(([key, n]): [string, string, number] => {
      const [worker, status] = key.split('\u0000') as [string, string];
      return [worker, status, n];
    });
    const body: Record<string, unknown> = { _id: COUNTS_DOC_ID, seq: this.seq, counts, jobs: [...this.jobs.entries()] };
    if (this.rev !== undefined) body._rev = this.rev;
    this.rev = (await this.db.put(body)).rev;
  }
}

function add(counts: Map<string, number>, key: string, n: number): void {
  const next = (counts.get(key) ?? 0) + n;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

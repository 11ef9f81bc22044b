/**
 * Keeps the dashboard's views up to date inside the embedded server, as CouchDB's background
 * indexer (ken) does for CouchDB: PouchDB builds a view only when it is queried, so without this
 * whoever first asks after a busy hour (the dashboard) waits while every change since is
 * indexed (44 s for 20,000 tasks, measured). The dashboard then reads with `stale=ok`: always at
 * once, and never more than a few seconds behind.
 *
 * Which views: those of `_design/after-lists` (the lists) and `_design/after-runs` (the run
 * figures), of a database whose views someone read in the last READ_RECENTLY_MS (the dashboard
 * open: it reads them every few seconds). Updating them is the embedded server's dearest work,
 * and the same thread answers the workers: 3,000 changed tasks cost it 2.3 s of indexing (seven
 * times their `_bulk_docs`), which, landing on a burst of due tasks, made bench W1b's drain 1.5 s
 * slower. With no reader the views wait; the first read answers at once from what is indexed
 * (saying how far behind it is) and from then on they are kept warm.
 *
 * When: a database whose update sequence moved is brought up to date once it has been quiet for
 * one interval, and at the latest every MAX_STALE_INTERVALS intervals while it keeps changing,
 * one database and one view at a time, so a burst of task writes (the workers' own path) is
 * never shared with an index update, and a long one only now and then. A tasks database (one
 * with `_design/after-lists`) also gets its counts kept (counts-keeper.ts) whether or not anyone
 * reads its views: `after status` reads them, and counting costs a tenth of indexing.
 */

import { CountsKeeper, type CountableDb } from './counts-keeper';

/** The PouchDB database methods warming uses (and counting: counts-keeper.ts). */
export interface WarmableDb extends CountableDb {
  info(): Promise<{ update_seq: number | string }>;
  allDocs(options: { startkey: string; endkey: string; include_docs: true }): Promise<{ rows: Array<{ id: string; doc?: DesignDoc }> }>;
  query(view: string, options: { limit: number; reduce?: boolean }): Promise<unknown>;
}

interface DesignDoc {
  _id: string;
  language?: string;
  views?: Record<string, { map?: unknown }>;
}

export interface IndexWarmerOptions {
  /** Time between looks at every database; 0 turns warming off. */
  intervalMs: number;
  listDatabases(): Promise<string[]>;
  openDatabase(name: string): Promise<WarmableDb>;
  /** Whether someone read this database's After views lately (its views are kept warm only then). @default always */
  readRecently?(name: string): boolean;
  log(level: 'debug' | 'info' | 'warning', message: string): void;
}

export interface IndexWarmer {
  /** One look at every database now (what the timer runs); resolves when done. */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

/** A database that keeps changing is warmed at least this often (in intervals). */
const MAX_STALE_INTERVALS = 15;
const DESIGN_PREFIX = '_design/after-';
/**
 * The design documents warmed: the dashboard's lists (store/dashboard-design.ts) and the run
 * figures (store/run-stats-db.ts). Not `_design/after-stats`, whose counts the embedded server
 * keeps itself (counts-keeper.ts), nor `_design/after`, which only a worker's start reads.
 */
const WARMED = ['_design/after-lists', '_design/after-runs'];
/** The views of a tasks database (dashboard-design.ts), as `<ddoc>/<view>`. */
const TASK_LISTS = 'after-lists/';

interface WarmState {
  /** For a tasks database: its counts by worker and status. */
  counts?: CountsKeeper;
  seenSeq: string;
  /** Intervals in a row the sequence was seen to move. */
  busyLooks: number;
  /** The sequence its counts include (a tasks database), or its views were found to need none. */
  countedSeq: string;
  warmedSeq: string;
}

/** How long after a read of its views a database's views are kept warm: the dashboard reads them every few seconds. */
export const READ_RECENTLY_MS = 10 * 60_000;

export function startIndexWarmer(options: IndexWarmerOptions): IndexWarmer {
  const states = new Map<string, WarmState>();
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  async function look(name: string): Promise<void> {
    const db = await options.openDatabase(name);
    const seq = String((await db.info()).update_seq);
    const state = states.get(name) ?? { seenSeq: '', busyLooks: 0, countedSeq: '', warmedSeq: '' };
    states.set(name, state);
    const moving = seq !== state.seenSeq;
    state.seenSeq = seq;
    state.busyLooks = moving ? state.busyLooks + 1 : 0;
    const read = options.readRecently?.(name) ?? true;
    if (seq === state.warmedSeq || (seq === state.countedSeq && !read)) return;
    // Quiet for an interval (a burst has ended), or busy for long: bring the views up to date.
    // A database seen for the first time counts as moving: it is warmed at the next quiet look.
    if (moving && state.busyLooks < MAX_STALE_INTERVALS) return;
    const views = await viewsOf(db);
    if (views.length === 0) {
      state.countedSeq = state.warmedSeq = seq;
      return;
    }
    const started = Date.now();
    if (views.some((view) => view.startsWith(TASK_LISTS))) {
      state.counts ??= new CountsKeeper(db);
      await state.counts.catchUp();
    }
    state.countedSeq = seq;
    state.busyLooks = 0;
    if (!read) return;
    for (const view of views) {
      if (stopped) return;
      await db.query(view, { limit: 0, reduce: false });
    }
    state.warmedSeq = seq;
    state.busyLooks = 0;
    options.log('debug', `views of ${name} brought up to seq ${seq} in ${Date.now() - started} ms`);
  }

  async function viewsOf(db: WarmableDb): Promise<string[]> {
    const designs = await db.allDocs({ startkey: DESIGN_PREFIX, endkey: `${DESIGN_PREFIX}\ufff0`, include_docs: true });
    const views: string[] = [];
    for (const row of designs.rows) {
      const doc = row.doc;
      if (!doc || !WARMED.includes(row.id) || (doc.language !== undefined && doc.language !== 'javascript')) continue;
      const ddoc = row.id.slice('_design/'.length);
      for (const [view, def] of Object.entries(doc.views ?? {})) if (typeof def?.map === 'string') views.push(`${ddoc}/${view}`);
    }
    return views;
  }

  async function pass(): Promise<void> {
    let names: string[];
    try {
      names = await options.listDatabases();
    } catch (err) {
      options.log('warning', `view warming: cannot list the databases: ${(err as Error).message}`);
      return;
    }
    for (const name of names) {
      if (stopped) return;
      try {
        await look(name);
      } catch (err) {
        // A database deleted meanwhile, or a view whose map function throws: try next time.
        options.log('debug', `view warming of ${name}: ${(err as Error).message}`);
      }
    }
  }

  function schedule(): void {
    if (stopped || options.intervalMs <= 0) return;
    timer = setTimeout(() => {
      running = pass().finally(schedule);
    }, options.intervalMs);
    timer.unref();
  }
  schedule();

  return {
    runOnce() {
      running = running.then(pass);
      return running;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

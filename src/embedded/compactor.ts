/**
 * Periodic compaction of every database the embedded server holds, in the server's process.
 *
 * A task rewritten every second leaves a revision body per write. PouchDB's leveldb adapter
 * keeps them until the document's revision tree is stemmed (`revs_limit`) or the database is
 * compacted, and LevelDB itself frees the space of deleted entries only when it compacts the
 * files they are in. Measured on this machine (3 documents rewritten 1,200 times with 2 KB of
 * random data each round): without compaction the files grew to 12–19 MB; PouchDB's compaction
 * alone left them at 12 MB (it deletes, LevelDB keeps the tombstones); followed by LevelDB's
 * `compactRange` they were 0.05–0.17 MB after every round.
 *
 * So each pass, for each database whose update sequence moved since its last compaction:
 * 1. PouchDB compaction of the documents changed since then (our own checkpoint in
 *    `_local/after-compaction`: PouchDB 7's `compact()` rescans every document on every call,
 *    6 s for 20,000 documents with 80,000 revisions here, because it passes `last_seq` where
 *    `changes()` reads `since`);
 * 2. LevelDB `compactRange` over the whole key space the first time this process compacts the
 *    database, then whenever the files have doubled (and grown by 1 MiB) since, and once more
 *    when the database goes quiet after a compaction that left deletions behind: its cost is
 *    proportional to the database's size (0.8 s for 47 MB here), so a busy database is
 *    rewritten as often as its growth makes it worth it, and a quiet one ends at its live size.
 * Each compaction is logged with the sizes before and after and how long it took.
 */

/** The PouchDB database methods compaction uses. */
export interface CompactableDb {
  info(): Promise<{ update_seq: number | string }>;
  changes(options: { since: number | string; limit: number }): Promise<{ results: Array<{ id: string }>; last_seq: number | string }>;
  compactDocument(id: string, maxHeight: number): Promise<unknown>;
  get(id: string): Promise<Record<string, unknown>>;
  put(doc: Record<string, unknown>): Promise<unknown>;
}

export interface CompactorOptions {
  /** Time between passes; 0 turns compaction off. */
  intervalMs: number;
  listDatabases(): Promise<string[]>;
  openDatabase(name: string): Promise<CompactableDb>;
  /** LevelDB compaction of the database's files. */
  compactFiles(name: string): Promise<void>;
  /** Bytes the database's files take on disk. */
  diskSize(name: string): number;
  log(level: 'debug' | 'info' | 'warning', message: string): void;
}

export interface Compactor {
  /** One pass now (also what the timer runs); resolves when every database is done. */
  runOnce(): Promise<void>;
  /** Stop the timer and wait for a pass in progress. */
  stop(): Promise<void>;
}

const CHECKPOINT_ID = '_local/after-compaction';
/** Changes read per request while compacting a database. */
const CHANGES_PAGE = 1000;
/** LevelDB compaction runs when the files grew by this factor and at least FILES_MIN_GROWTH. */
const FILES_GROWTH_FACTOR = 2;
const FILES_MIN_GROWTH = 1024 * 1024;

interface DbState {
  /** Update sequence the last compaction reached. */
  compactedSeq: number | string;
  /** Size right after the last LevelDB compaction of this process (none yet: undefined). */
  filesAfter?: number;
  /** PouchDB compaction deleted revisions that no LevelDB compaction has reclaimed yet. */
  filesDirty?: boolean;
}

export function startCompactor(options: CompactorOptions): Compactor {
  const states = new Map<string, DbState>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  async function compactDatabase(name: string): Promise<void> {
    const db = await options.openDatabase(name);
    const seq = (await db.info()).update_seq;
    const state = states.get(name) ?? { compactedSeq: await readCheckpoint(db) };
    states.set(name, state);
    const quiet = String(seq) === String(state.compactedSeq);
    if (quiet && !state.filesDirty) return;

    const startedAt = Date.now();
    const sizeBefore = options.diskSize(name);
    const changed = quiet ? 0 : await compactChangedDocuments(db, state);
    const filesBefore = options.diskSize(name);
    const grown = state.filesAfter === undefined
      || (filesBefore >= state.filesAfter * FILES_GROWTH_FACTOR && filesBefore - state.filesAfter >= FILES_MIN_GROWTH);
    const compactFiles = grown || quiet;
    if (compactFiles) {
      await options.compactFiles(name);
      state.filesAfter = options.diskSize(name);
    }
    state.filesDirty = !compactFiles && changed > 0;
    const files = compactFiles ? ', files compacted' : '';
    const level = changed > 0 || compactFiles ? 'info' : 'debug';
    options.log(level, `compacted ${name}: ${changed} changed documents${files}, ${mb(sizeBefore)} -> ${mb(options.diskSize(name))} in ${Date.now() - startedAt} ms`);
  }

  /** PouchDB compaction of the documents changed since the checkpoint; resolves with their count. */
  async function compactChangedDocuments(db: CompactableDb, state: DbState): Promise<number> {
    let changed = 0;
    let since = state.compactedSeq;
    for (;;) {
      // One page at a time (with `return_docs: false` PouchDB would resolve with no results).
      const page = await db.changes({ since, limit: CHANGES_PAGE });
      for (const row of page.results) {
        await db.compactDocument(row.id, 0);
        changed++;
      }
      since = page.last_seq;
      if (page.results.length < CHANGES_PAGE || stopped) break;
    }
    state.compactedSeq = since;
    await writeCheckpoint(db, since);
    return changed;
  }

  async function pass(): Promise<void> {
    let names: string[];
    try {
      names = await options.listDatabases();
    } catch (err) {
      options.log('warning', `compaction: cannot list the databases (${(err as Error).message})`);
      return;
    }
    for (const name of names) {
      if (stopped) return;
      try {
        await compactDatabase(name);
      } catch (err) {
        // A database deleted meanwhile, or a disk problem: the next pass tries again.
        options.log('warning', `compaction of ${name} failed: ${(err as Error).message}`);
      }
    }
  }

  const schedule = (): void => {
    if (stopped || options.intervalMs <= 0) return;
    timer = setTimeout(() => {
      running = pass().finally(schedule);
    }, options.intervalMs);
  };
  schedule();

  return {
    runOnce() {
      running = running.then(pass);
      return running;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}

async function readCheckpoint(db: CompactableDb): Promise<number | string> {
  try {
    const doc = await db.get(CHECKPOINT_ID);
    return typeof doc.last_seq === 'number' || typeof doc.last_seq === 'string' ? doc.last_seq : 0;
  } catch {
    return 0;
  }
}

async function writeCheckpoint(db: CompactableDb, seq: number | string): Promise<void> {
  let current: Record<string, unknown> = { _id: CHECKPOINT_ID };
  try {
    current = await db.get(CHECKPOINT_ID);
  } catch {
    // first compaction of this database
  }
  await db.put({ ...current, _id: CHECKPOINT_ID, last_seq: seq });
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

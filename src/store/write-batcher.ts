/**
 * Groups the document writes issued in one tick into `_bulk_docs` requests: when the worker
 * claims or finishes many tasks at once, they cost one round trip, not one each.
 */
import type { TaskDoc } from '../types';
import type { WriteResult } from './types';

/** How one document of a batch fared: written, a conflict, or refused with an error. */
export type DocOutcome = WriteResult | { ok: false; error: Error };

/** Writes `docs` (one request) and reports each document's outcome, in the same order. */
export type SendBatch = (docs: TaskDoc[], kinds: WriteKind[]) => Promise<DocOutcome[]>;

/** `claim`: the write makes this instance the task's holder (see WriteOptions.claim). */
export type WriteKind = 'claim' | 'plain';

/** Most documents per `_bulk_docs` request: keeps a request body and its response small. */
export const MAX_DOCS_PER_BULK = 500;

interface PendingWrite {
  doc: TaskDoc;
  /** When the write is needed by (epoch ms); writes that wait leave soonest-needed first. */
  neededByMs: number;
  kind: WriteKind;
  resolve(result: WriteResult): void;
  reject(error: Error): void;
}

export interface WriteBatcherOptions {
  /** @default MAX_DOCS_PER_BULK */
  maxDocsPerBatch?: number;
  /** Requests in flight at once; writes issued meanwhile wait and leave together. @default Infinity */
  maxBatchesInFlight?: number;
}

export class WriteBatcher {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  private readonly maxDocsPerBatch: number;
  private readonly maxBatchesInFlight: number;

  constructor(
    private readonly send: SendBatch,
    options: WriteBatcherOptions = {},
  ) {
    this.maxDocsPerBatch = options.maxDocsPerBatch ?? MAX_DOCS_PER_BULK;
    this.maxBatchesInFlight = options.maxBatchesInFlight ?? Infinity;
  }

  write(doc: TaskDoc, options: { neededByMs?: number; kind?: WriteKind } = {}): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      // A copy: the caller may go on changing its object before the batch leaves. Through JSON,
      // which is what is sent anyway and, unlike structuredClone, copes with a document nested
      // thousands of levels deep (the worker writes `error` on such a task).
      this.pending.push({ doc: JSON.parse(JSON.stringify(doc)) as TaskDoc, neededByMs: options.neededByMs ?? 0, kind: options.kind ?? 'plain', resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs after the promise callbacks of this tick, so writes issued by the
    // continuations of one event (a feed batch, a timer) still join the same request.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const free = this.maxBatchesInFlight - this.inFlight;
    if (free <= 0 || this.pending.length === 0) return;
    // With requests in flight limited, writes wait: the ones needed soonest go first (a stable
    // sort keeps the order of writes needed at the same moment).
    const waiting = Number.isFinite(this.maxBatchesInFlight) ? [...this.pending].sort((a, b) => a.neededByMs - b.neededByMs) : this.pending;
    const batches = groupIntoBatches(waiting, this.maxDocsPerBatch);
    const leaving = batches.slice(0, free);
    // What does not leave now keeps its order and goes when a request in flight has answered.
    this.pending = batches.slice(free).flat();
    for (const batch of leaving) {
      this.inFlight++;
      void this.sendBatch(batch).finally(() => {
        this.inFlight--;
        if (this.pending.length > 0) this.scheduleFlush();
      });
    }
  }

  private async sendBatch(writes: PendingWrite[]): Promise<void> {
    let outcomes: DocOutcome[];
    try {
      outcomes = await this.send(
        writes.map((write) => write.doc),
        writes.map((write) => write.kind),
      );
    } catch (err) {
      for (const write of writes) write.reject(err as Error);
      return;
    }
    writes.forEach((write, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) write.reject(new Error(`no result for document ${write.doc._id} in the bulk response`));
      else if ('error' in outcome) write.reject(outcome.error);
      else write.resolve(outcome);
    });
  }
}

/**
 * Batches of at most `maxDocs` writes, none holding two writes of one `_id`: which row of a
 * response answers which of two same-id documents would be a guess (pouchdb-server does not
 * answer in request order), so a second write of a document goes into a later batch, where
 * it meets the first as an ordinary conflict.
 */
export function groupIntoBatches<T extends { doc: TaskDoc }>(writes: readonly T[], maxDocs: number): T[][] {
  const batches: Array<{ writes: T[]; ids: Set<string> }> = [];
  for (const write of writes) {
    const id = write.doc._id;
    let batch = batches.find((b) => b.writes.length < maxDocs && (id === undefined || !b.ids.has(id)));
    if (!batch) batches.push((batch = { writes: [], ids: new Set() }));
    batch.writes.push(write);
    if (id !== undefined) batch.ids.add(id);
  }
  return batches.map((b) => b.writes);
}

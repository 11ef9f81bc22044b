/**
 * Groups the document writes issued in one tick into `_bulk_docs` requests: when the worker
 * claims or finishes many tasks at once, they cost one round trip, not one each.
 */
import type { TaskDoc } from '../types';
import type { WriteResult } from './types';

/** How one document of a batch fared: written, a conflict, or refused with an error. */
export type DocOutcome = WriteResult | { ok: false; error: Error };

/** Writes `docs` (one request) and reports each document's outcome, in the same order. */
export type SendBatch = (docs: TaskDoc[]) => Promise<DocOutcome[]>;

/** Most documents per `_bulk_docs` request: keeps a request body and its response small. */
export const MAX_DOCS_PER_BULK = 500;

interface PendingWrite {
  doc: TaskDoc;
  resolve(result: WriteResult): void;
  reject(error: Error): void;
}

export class WriteBatcher {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;

  constructor(
    private readonly send: SendBatch,
    private readonly maxDocsPerBatch: number = MAX_DOCS_PER_BULK,
  ) {}

  write(doc: TaskDoc): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      // A copy: the caller may go on changing its object before the batch leaves.
      this.pending.push({ doc: structuredClone(doc), resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      // setImmediate runs after the promise callbacks of this tick, so writes issued by the
      // continuations of one event (a feed batch, a timer) still join the same request.
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const writes = this.pending;
    this.pending = [];
    for (const batch of groupIntoBatches(writes, this.maxDocsPerBatch)) void this.sendBatch(batch);
  }

  private async sendBatch(writes: PendingWrite[]): Promise<void> {
    let outcomes: DocOutcome[];
    try {
      outcomes = await this.send(writes.map((write) => write.doc));
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

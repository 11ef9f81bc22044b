/**
 * Groups the document writes issued in one turn of the event loop into `_bulk_docs` requests:
 * when the worker claims or finishes many tasks at once, they cost a few round trips, not one
 * each. A caller hands a batch and gets one answer per document, in its order.
 *
 * Requests hold at most `maxDocsPerBatch` documents, and several may be in flight at once: the
 * database works on one while the worker reads the answer of another, so a burst's waves
 * overlap instead of taking turns (bench W1).
 */
import type { TaskDoc } from '../../types';
import type { WriteAnswer } from './write-outcomes';

/** Writes `docs` (one request) and reports each document's answer, in the same order. */
export type SendBatch = (docs: TaskDoc[], kinds: WriteKind[]) => Promise<WriteAnswer[]>;

/** `claim`: the write makes this instance the task's holder (see TaskWrite.claim). */
export type WriteKind = 'claim' | 'plain';

/** Most documents per `_bulk_docs` request of the run lane (measured on W1, docs/performance.md). */
export const MAX_DOCS_PER_BULK = 200;

export interface BatchItem {
  doc: TaskDoc;
  kind: WriteKind;
  /** When the write is needed by (epoch ms); writes that wait leave soonest-needed first. @default 0 */
  neededByMs?: number;
}

interface PendingWrite extends BatchItem {
  call: PendingCall;
  index: number;
}

/** One caller's batch: settles when every one of its documents has its answer. */
interface PendingCall {
  answers: WriteAnswer[];
  left: number;
  resolve(answers: WriteAnswer[]): void;
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
  /** Document id → how many of its writes are in requests in flight. */
  private readonly idsInFlight = new Map<string, number>();
  private readonly maxDocsPerBatch: number;
  private readonly maxBatchesInFlight: number;

  constructor(
    private readonly send: SendBatch,
    options: WriteBatcherOptions = {},
  ) {
    this.maxDocsPerBatch = options.maxDocsPerBatch ?? MAX_DOCS_PER_BULK;
    this.maxBatchesInFlight = options.maxBatchesInFlight ?? Infinity;
  }

  /** The documents are sent as they are: the caller must not change them afterwards. */
  write(items: readonly BatchItem[]): Promise<WriteAnswer[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const call: PendingCall = { answers: new Array<WriteAnswer>(items.length), left: items.length, resolve };
      for (let index = 0; index < items.length; index++) {
        const item = items[index]!;
        this.pending.push({ doc: item.doc, kind: item.kind, neededByMs: item.neededByMs, call, index });
      }
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs after the promise callbacks of this turn, so writes issued by the
    // continuations of one event (a feed batch, a claim's answer) still join the same request.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.inFlight >= this.maxBatchesInFlight || this.pending.length === 0) return;
    // With requests in flight limited, writes wait: the ones needed soonest go first (a stable
    // sort keeps the order of writes needed at the same moment).
    const waiting = Number.isFinite(this.maxBatchesInFlight) ? [...this.pending].sort((a, b) => (a.neededByMs ?? 0) - (b.neededByMs ?? 0)) : this.pending;
    // A document's later write leaves only once its earlier write has its answer: two requests
    // in flight at once may reach the database in either order, and the later write must meet
    // the earlier as a conflict, not be overtaken by it. The writes of other documents go on.
    const ready: PendingWrite[] = [];
    const held: PendingWrite[] = [];
    const seen = new Set<string>();
    for (const write of waiting) {
      const id = write.doc._id;
      if (this.idsInFlight.has(id) || seen.has(id)) held.push(write);
      else ready.push(write);
      seen.add(id);
    }
    const batches = groupIntoBatches(ready, this.maxDocsPerBatch);
    const leaving = batches.slice(0, this.maxBatchesInFlight - this.inFlight);
    // What does not leave now keeps its order (per document) and goes when a request in flight has answered.
    this.pending = [...batches.slice(leaving.length).flat(), ...held];
    for (const batch of leaving) {
      this.inFlight++;
      this.countInFlight(batch, 1);
      void this.sendBatch(batch).finally(() => {
        this.inFlight--;
        this.countInFlight(batch, -1);
        if (this.pending.length > 0) this.scheduleFlush();
      });
    }
  }

  private countInFlight(batch: readonly PendingWrite[], change: 1 | -1): void {
    for (const { doc } of batch) {
      const count = (this.idsInFlight.get(doc._id) ?? 0) + change;
      if (count > 0) this.idsInFlight.set(doc._id, count);
      else this.idsInFlight.delete(doc._id);
    }
  }

  private async sendBatch(writes: PendingWrite[]): Promise<void> {
    let answers: WriteAnswer[];
    try {
      answers = await this.send(
        writes.map((write) => write.doc),
        writes.map((write) => write.kind),
      );
    } catch (err) {
      answers = writes.map(() => ({ ok: false, error: err as Error }));
    }
    writes.forEach((write, index) => {
      const answer = answers[index] ?? { ok: false, error: new Error(`no result for document ${write.doc._id} in the bulk response`) };
      const { call } = write;
      call.answers[write.index] = answer;
      if (--call.left === 0) call.resolve(call.answers);
    });
  }
}

/**
 * Batches of at most `maxDocs` writes, none holding two writes of one `_id`: which row of a
 * response answers which of two same-id documents would be a guess (pouchdb-server does not
 * answer in request order), so a second write of a document goes into a later batch, where
 * it meets the first as an ordinary conflict (WriteBatcher sends it once the first has its answer).
 */
export function groupIntoBatches<T extends { doc: TaskDoc }>(writes: readonly T[], maxDocs: number): T[][] {
  const batches: Array<{ writes: T[]; ids: Set<string> }> = [];
  let open = 0;
  for (const write of writes) {
    const id = write.doc._id;
    // Batches before `open` are full: the search starts at the first that may take more.
    while (open < batches.length && batches[open]!.writes.length >= maxDocs) open++;
    let batch: { writes: T[]; ids: Set<string> } | undefined;
    for (let at = open; at < batches.length; at++) {
      const candidate = batches[at]!;
      if (candidate.writes.length < maxDocs && (id === undefined || !candidate.ids.has(id))) {
        batch = candidate;
        break;
      }
    }
    if (!batch) batches.push((batch = { writes: [], ids: new Set() }));
    batch.writes.push(write);
    if (id !== undefined) batch.ids.add(id);
  }
  return batches.map((b) => b.writes);
}

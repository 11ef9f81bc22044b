/**
 * `_bulk_docs`: many documents in one request, each with an answer of its own (a 201 says
 * nothing about any one document). Every bulk write of After (the worker's batches, import,
 * purge on pouchdb-server) reads the rows here.
 */
import type { Connection } from './connection';
import { writtenJson } from '../task/document-size';

/** One document's answer. */
export interface BulkRow {
  id?: string;
  rev?: string;
  ok?: boolean;
  /** CouchDB: written to fewer copies than a quorum (the response is then a 202). */
  accepted?: boolean;
  /** CouchDB's error name (`conflict`, `forbidden`...); PouchDB's own rows say `true`, with `name` and `status`. */
  error?: string | boolean;
  name?: string;
  status?: number;
  reason?: string;
  message?: string;
}

/** What the database did with one document. */
export type BulkVerdict =
  | { kind: 'written'; rev: string }
  /** Someone else wrote it first, or (a create) it exists already. */
  | { kind: 'conflict' }
  | { kind: 'refused'; error: string; reason: string | undefined }
  /** The answer has no row for it. */
  | { kind: 'unanswered' };

export interface BulkAnswer {
  /** 201, or 202 from a CouchDB cluster where some document reached fewer copies than a quorum. */
  status: number;
  /** Each document's row, in the order sent (see matchRows). */
  rows: Array<BulkRow | undefined>;
}

/** Send `docs` as one `_bulk_docs` through `request` (which decides about retries). */
export async function postBulkDocs(request: Connection['request'], docs: readonly object[]): Promise<BulkAnswer> {
  // The body as JSON.stringify({ docs }) writes it, from each document's text: a document measured
  // for its write (a run's finish) is not serialised a second time.
  const bodyJson = `{"docs":[${docs.map(writtenJson).join(',')}]}`;
  const res = await request<BulkRow[]>({ method: 'POST', path: '_bulk_docs', bodyJson });
  return { status: res.status, rows: matchRows(docs, Array.isArray(res.body) ? res.body : []) };
}

/**
 * Create each document unless it exists: sent without `_rev`, one that exists already is a
 * `conflict` and nothing is overwritten (import). Each document's verdict, in the order given.
 */
export async function createDocuments(conn: Connection, docs: readonly object[]): Promise<BulkVerdict[]> {
  return (await postBulkDocs(conn.request, docs)).rows.map(bulkVerdict);
}

/**
 * The `_bulk_docs` row of each document. CouchDB answers in request order, but pouchdb-server
 * 4.2 (its LevelDB adapter) does not: rows are matched by `_id`, in order among equal ids (two
 * writes of one document in one batch), and by position only for documents sent without one.
 */
export function matchRows(docs: readonly object[], rows: readonly BulkRow[]): Array<BulkRow | undefined> {
  const rowsById = new Map<string, BulkRow[]>();
  for (const row of rows) {
    if (row.id === undefined) continue;
    const same = rowsById.get(row.id);
    if (same) same.push(row);
    else rowsById.set(row.id, [row]);
  }
  return docs.map((doc, index) => {
    const id = (doc as { _id?: unknown })._id;
    return typeof id === 'string' ? rowsById.get(id)?.shift() : rows[index];
  });
}

export function bulkVerdict(row: BulkRow | undefined): BulkVerdict {
  if (row === undefined) return { kind: 'unanswered' };
  if ((row.error === undefined || row.error === false) && typeof row.rev === 'string') return { kind: 'written', rev: row.rev };
  if (row.error === 'conflict' || row.name === 'conflict' || row.status === 409) return { kind: 'conflict' };
  const error = typeof row.error === 'string' ? row.error : (row.name ?? 'error');
  return { kind: 'refused', error, reason: row.reason ?? row.message };
}

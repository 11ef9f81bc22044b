/**
 * Write import candidates with `_bulk_docs`, idempotently: every candidate has a stable id and
 * no `_rev`, so one that exists already comes back as a per-document `conflict` and is counted
 * as skipped; nothing is ever overwritten. A candidate whose id appeared earlier in the same
 * file is skipped before it is sent (two copies in one request would race each other).
 */
import { createDocuments } from '../store/bulk-docs';
import type { Connection } from '../store/connection';
import type { ImportCandidate, ImportRejection } from './crontab';

export interface ImportSkip {
  line: number;
  id: string;
  reason: string;
}

export interface ImportSummary {
  created: Array<{ line: number; id: string }>;
  skipped: ImportSkip[];
  rejected: ImportRejection[];
}

/** Documents per `_bulk_docs` request: large enough to be quick, small enough to show progress. */
export const BULK_BATCH = 200;

export async function importCandidates(
  conn: Connection,
  candidates: readonly ImportCandidate[],
  rejected: readonly ImportRejection[],
  onProgress: (done: number, total: number) => void = () => {},
): Promise<ImportSummary> {
  const summary: ImportSummary = { created: [], skipped: [], rejected: [...rejected] };
  const firstLineOf = new Map<string, number>();
  const unique: ImportCandidate[] = [];
  for (const candidate of candidates) {
    const first = firstLineOf.get(candidate.doc._id);
    if (first !== undefined) summary.skipped.push({ line: candidate.line, id: candidate.doc._id, reason: `same task as line ${first}` });
    else {
      firstLineOf.set(candidate.doc._id, candidate.line);
      unique.push(candidate);
    }
  }
  onProgress(0, unique.length);
  for (let start = 0; start < unique.length; start += BULK_BATCH) {
    const batch = unique.slice(start, start + BULK_BATCH);
    const verdicts = await createDocuments(conn, batch.map((candidate) => candidate.doc));
    batch.forEach((candidate, index) => {
      const id = candidate.doc._id;
      const verdict = verdicts[index]!;
      if (verdict.kind === 'written') summary.created.push({ line: candidate.line, id });
      else if (verdict.kind === 'conflict') summary.skipped.push({ line: candidate.line, id, reason: 'already in the database' });
      else if (verdict.kind === 'unanswered') summary.rejected.push({ line: candidate.line, reason: 'the database did not report on this document' });
      else {
        // A validate_doc_update failure may quote a whole function: keep the line readable.
        const why = shorten(verdict.reason);
        summary.rejected.push({ line: candidate.line, reason: `the database refused it: ${verdict.error}${why ? ` (${why})` : ''}` });
      }
    });
    onProgress(Math.min(start + batch.length, unique.length), unique.length);
  }
  summary.rejected.sort((a, b) => a.line - b.line);
  return summary;
}

function shorten(text: string | undefined, max = 200): string | undefined {
  if (text === undefined) return undefined;
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/**
 * An NDJSON file of tasks (one JSON task document a line) as import candidates. Pure.
 *
 * A line's `_id` is kept (a chosen id is the task's unique key); a line without one gets an id
 * hashed from its text, so importing the same file again finds every task already there. A
 * `_rev` is dropped: it belongs to another database. Every line is checked with the worker's
 * own validation, so a typo is reported here rather than becoming a task in `error` later.
 */
import { validateTask } from '../task/validate';
import type { TaskDoc } from '../types';
import { stableId, type ParsedImport } from './crontab';

export interface NdjsonOptions {
  /** Worker of lines that name none. */
  worker?: string;
  /** Recorded in each task's `imported.from` when the line has no `imported` field. */
  source?: string;
}

export function parseNdjson(text: string, options: NdjsonOptions = {}): ParsedImport {
  const result: ParsedImport = { candidates: [], rejected: [] };
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      result.rejected.push({ line, reason: `not JSON: ${(err as Error).message}` });
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      result.rejected.push({ line, reason: 'not a JSON object (one task document a line)' });
      return;
    }
    const { _rev: _dropped, ...fields } = parsed as Record<string, unknown>;
    if (fields.worker === undefined && options.worker !== undefined) fields.worker = options.worker;
    if (fields.status === undefined) fields.status = 'waiting';
    if (fields._id === undefined) fields._id = stableId('import', [options.worker ?? '', trimmed]);
    if (fields.imported === undefined) fields.imported = { from: options.source ?? 'ndjson', line };
    const doc = fields as TaskDoc;
    const valid = validateTask(doc);
    if (!valid.ok) {
      result.rejected.push({ line, reason: valid.message });
      return;
    }
    if (typeof doc._id !== 'string' || doc._id === '' || doc._id.startsWith('_')) {
      result.rejected.push({ line, reason: `_id: ${JSON.stringify(doc._id)} cannot be a task id (empty, or starts with "_")` });
      return;
    }
    result.candidates.push({ line, doc: doc as TaskDoc & { _id: string } });
  });
  return result;
}

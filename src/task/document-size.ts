/**
 * How big a task document is, as the database stores it: the bytes of its JSON.
 *
 * Measured with one native JSON.stringify, remembered per document object (the worker decides
 * the same document again when instances join or leave, or its dependencies change), so a
 * task's size costs one serialisation when it arrives, as parsing it did. No code of After's
 * walks a task's payload (`data`, `job.arguments`, `result`) key by key: before issue 19 the
 * worker measured every document's depth with a walk over every value, which for a 7.7 MB
 * document of 600,000 keys held the worker for seconds.
 *
 * A document JSON.stringify cannot serialise (nested a few thousand levels deep, past V8's
 * stack) could never be written back either: it is `unserialisable`.
 *
 * A document about to be written (a run's finish, measured for `max_task_size`) is measured by
 * `measureForWrite`, which keeps its text until the write takes it (`writtenJson`): the
 * `_bulk_docs` body is then built from that text instead of serialising the document again.
 */
const measured = new WeakMap<object, DocumentSize>();
/** The text of a document measured for its write, with the `_rev` it had then. */
const textForWrite = new WeakMap<object, { rev: unknown; text: string }>();

export type DocumentSize = number | 'unserialisable';

export function documentBytes(doc: object): DocumentSize {
  const known = measured.get(doc);
  if (known !== undefined) return known;
  const size = sizeOf(serialise(doc));
  measured.set(doc, size);
  return size;
}

/**
 * The size of a document the caller is about to write and will not change before it is
 * written; its text is kept for the write's body (writtenJson).
 */
export function measureForWrite(doc: object): DocumentSize {
  const text = serialise(doc);
  if (text) textForWrite.set(doc, { rev: (doc as { _rev?: unknown })._rev, text });
  return sizeOf(text);
}

/**
 * The JSON text of a document being written: the text measureForWrite kept (taken: a document
 * is written once), or a new serialisation. A document whose `_rev` changed since it was
 * measured is serialised again: its kept text is no longer the document.
 */
export function writtenJson(doc: object): string {
  const kept = textForWrite.get(doc);
  if (kept !== undefined) {
    textForWrite.delete(doc);
    if (kept.rev === (doc as { _rev?: unknown })._rev) return kept.text;
  }
  return JSON.stringify(doc);
}

/** The document's JSON, or undefined when it has none (too deep, or a value JSON refuses). */
function serialise(doc: object): string | undefined {
  try {
    return (JSON.stringify(doc) as string | undefined) ?? '';
  } catch {
    return undefined;
  }
}

function sizeOf(text: string | undefined): DocumentSize {
  // RangeError (too deep), or a value JSON refuses: nothing the worker could write.
  return text === undefined ? 'unserialisable' : Buffer.byteLength(text, 'utf8');
}

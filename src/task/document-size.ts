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
 */
const measured = new WeakMap<object, DocumentSize>();

export type DocumentSize = number | 'unserialisable';

export function documentBytes(doc: object): DocumentSize {
  const known = measured.get(doc);
  if (known !== undefined) return known;
  let size: DocumentSize;
  try {
    size = Buffer.byteLength(JSON.stringify(doc) ?? '', 'utf8');
  } catch {
    // RangeError (too deep), or a value JSON refuses: nothing the worker could write.
    size = 'unserialisable';
  }
  measured.set(doc, size);
  return size;
}

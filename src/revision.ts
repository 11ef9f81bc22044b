/** CouchDB revisions (`<generation>-<id>`), as the worker and the store both read them. */

/** The generation a `_rev` starts with; 0 for none or a malformed one. */
export function revGeneration(rev: string | undefined): number {
  if (!rev) return 0;
  const n = Number.parseInt(rev, 10);
  return Number.isFinite(n) ? n : 0;
}

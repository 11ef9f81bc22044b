/**
 * What a Mango selector sent by anyone but the server admin may hold on the embedded server.
 *
 * The embedded server answers every request from one JavaScript thread, and PouchDB evaluates
 * `$regex` with JavaScript's backtracking RegExp on every document a `_find` (or a `_changes`
 * with `selector`) looks at: `{"s": {"$regex": "^(a+)+$"}}` over one 27-character string held the
 * server 7.6 s, every worker's requests waiting behind it (issue 19, row 1b). Neither a time limit
 * (a RegExp cannot be interrupted in the thread that runs it) nor a linear-time engine (not in
 * Node.js 20 without a native module) is at hand, so `$regex` is refused to non-admins, with
 * a reason. No query After itself makes on the embedded server uses `$regex` (the partial
 * index that does is created on CouchDB only, store/for-operators/init.ts). CouchDB evaluates `$regex` in
 * Erlang's re, per request, without stopping other requests, and takes it from anyone.
 */

/** The operators refused to non-admins, with why. */
const REFUSED_OPERATORS: ReadonlyMap<string, string> = new Map([
  [
    '$regex',
    '$regex is refused on the embedded server to requests without the server admin: a pattern can backtrack for seconds on one document while every other request waits (match with $eq, $in, or a $gte/$lt range for a prefix; or query as the admin, or use CouchDB)',
  ],
]);

/**
 * Why a non-admin may not run `selector`, or null. `selector` is the request's own JSON (its
 * size is bounded by the request size limit); the walk keeps its own stack, so no depth of
 * nesting can overflow ours.
 */
export function selectorProblem(selector: unknown): string | null {
  const stack: unknown[] = [selector];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
      continue;
    }
    for (const [key, inner] of Object.entries(value)) {
      const refused = REFUSED_OPERATORS.get(key);
      if (refused !== undefined) return refused;
      stack.push(inner);
    }
  }
  return null;
}

/** A `selector` query parameter as express-pouchdb reads it (JSON when it parses). */
export function selectorFromQuery(value: string | null): unknown {
  if (value === null) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

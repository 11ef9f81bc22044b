/**
 * What a request to the embedded server may do, decided from its method, URL and (for writes)
 * the documents it carries: pure functions, tested as tables (test/unit/embedded-guard-rules).
 *
 * express-pouchdb 4.2 alone lets anyone who reaches the port write design documents, whose
 * JavaScript (`validate_doc_update`, views, filters, `_temp_view`) it runs unsandboxed in its
 * own process; with an admin configured, an anonymous `PUT /<new db>` crashes it
 * (`db.info is not a function`). So the guard in front of it allows requests without admin
 * credentials only on an allowlist: reading, and writing ordinary and `_local` documents in
 * databases that exist. Everything else needs the server admin.
 *
 * Paths are judged on their decoded segments, the way express routes them: `%5Fdesign` is
 * `_design`, and `/tasks/_design%2Fx` is the document `_design/x`.
 */

/** Who may make a request. */
export type Access =
  /** Everyone, from anywhere: the welcome at `/` (CouchDB's is public too; it says what the server is). */
  | 'public'
  /** Anyone allowed in: admin, a named user, or an anonymous client on loopback. */
  | 'anyone'
  /** The server admin only. */
  | 'admin'
  /** No one: the request would crash or confuse the server, or is malformed. */
  | 'nobody';

/**
 * How the guard reads the body before express-pouchdb sees it:
 * - `json`: parsed here (by body-parser, as express-pouchdb would) up to the document size
 *   limit; express-pouchdb's own parser then skips it, so no body is parsed twice;
 * - `bulk`: like `json` up to the request size limit, each document then held to the
 *   document limit (checked only when the body is larger than that limit);
 * - `raw`: left to express-pouchdb (attachments, `_config`, show/list/update handlers), held
 *   to the document limit by its Content-Length.
 */
export type BodyKind = 'json' | 'bulk' | 'raw';

/** Which document ids in the request the guard checks for a non-admin. */
export type DocumentWrite =
  /** `PUT /db/id` and `POST /db`: the id in the path, `?id=` and the body's `_id`. */
  | 'single'
  /** `_bulk_docs`: every document's `_id`. */
  | 'bulk'
  /** `COPY /db/id`: the Destination header. */
  | 'copy';

export interface RouteRule {
  access: Access;
  body: BodyKind;
  /** Set when a non-admin's request writes documents whose ids must be checked. */
  writes?: DocumentWrite;
  /** Why the request needs admin or is refused: the `reason` sent back. */
  reason?: string;
  /** For `nobody`: the status to answer with. */
  status?: number;
  /**
   * The database the request reaches (its decoded name): its `_security` members apply to
   * everyone but the server admin (database-access.ts).
   */
  database?: string;
  /** Where the request carries a Mango selector a non-admin's may not use `$regex` in (query-rules.ts). */
  selector?: 'body' | 'query';
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/** POST endpoints of a database that only read or write ordinary documents. */
const DATABASE_POSTS: Record<string, BodyKind> = {
  _all_docs: 'json',
  _bulk_docs: 'bulk',
  _bulk_get: 'json',
  _changes: 'json',
  _find: 'json',
  _explain: 'json',
  _revs_diff: 'json',
  _missing_revs: 'json',
  _ensure_full_commit: 'json',
};

/**
 * GET endpoints of a database that only read. `_security` is readable by the database's members,
 * as on CouchDB; `_design_docs` and `_local_docs` are not served by express-pouchdb 4.2 (404),
 * but are answered only once membership allows, as CouchDB answers them.
 */
const DATABASE_READS = new Set(['_all_docs', '_changes', '_index', '_security', '_design_docs', '_local_docs']);
/** Where the embedded server keeps a database's `_security` (pouchdb-security): admin only, whatever the method. */
const SECURITY_DOC_ID = '_local/_security';

/** Design document handlers that run the handler's JavaScript on a request: admin only. */
const DESIGN_HANDLERS = new Set(['_show', '_list', '_update', '_rewrite']);

const anyone = (body: BodyKind = 'raw', writes?: DocumentWrite): RouteRule => (writes ? { access: 'anyone', body, writes } : { access: 'anyone', body });
const admin = (reason: string): RouteRule => ({ access: 'admin', body: 'raw', reason });
const nobody = (status: number, reason: string): RouteRule => ({ access: 'nobody', body: 'raw', status, reason });

/** The rule for one request, from its method and its raw URL (path and query as sent). */
export function routeRule(method: string, url: string): RouteRule {
  const verb = method.toUpperCase();
  const queryStart = url.indexOf('?');
  const rawPath = queryStart === -1 ? url : url.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
  if (!rawPath.startsWith('/')) return nobody(400, 'the request path must start with /');

  const rawSegments = rawPath.slice(1).split('/');
  // A trailing slash (`GET /tasks/`, as PouchDB's HTTP adapter sends) names the same resource.
  if (rawSegments.length > 1 && rawSegments[rawSegments.length - 1] === '') rawSegments.pop();
  const segments: string[] = [];
  for (const raw of rawSegments) {
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      return nobody(400, 'the request path is not valid percent-encoding');
    }
  }
  if (segments.some((s) => s === '.' || s === '..')) return nobody(400, 'the request path may not contain . or .. segments');
  // pouchdb-server 4.2 crashes on `_changes?filter=_selector` (docs/spec.md §1); CouchDB supports it.
  // express-pouchdb JSON-parses query values, so `filter="_selector"` is the same request.
  if (query.getAll('filter').some((value) => jsonStringOrSelf(value) === '_selector')) return nobody(400, 'filter=_selector is not supported by the embedded server (use a design document filter)');

  const [first = '', ...rest] = segments;
  if (first === '') {
    if (segments.length > 1 || rawSegments.length > 1) return admin('this path needs the server admin');
    return READ_METHODS.has(verb) ? { access: 'public', body: 'raw' } : admin(`${verb} / needs the server admin`);
  }
  if (segments.slice(0, -1).some((s) => s === '')) return admin('paths with empty segments need the server admin');
  if (first.startsWith('_')) return serverRule(verb, first);
  return { ...databaseRule(verb, first, rest, query), database: first };
}

function serverRule(verb: string, endpoint: string): RouteRule {
  if (endpoint === '_uuids' && READ_METHODS.has(verb)) return anyone();
  if (endpoint === '_session') {
    if (READ_METHODS.has(verb)) return anyone();
    return nobody(403, 'cookie sessions are off on the embedded server; send HTTP Basic credentials with each request');
  }
  if (endpoint === '_users' || endpoint === '_replicator') return admin(`the ${endpoint} database is for the server admin only`);
  return admin(`${endpoint} needs the server admin`);
}

function databaseRule(verb: string, db: string, rest: string[], query: URLSearchParams): RouteRule {
  if (rest.length === 0) {
    if (READ_METHODS.has(verb)) return anyone();
    if (verb === 'POST') return anyone('json', 'single');
    if (verb === 'PUT') return admin(`only the server admin may create databases (${db})`);
    if (verb === 'DELETE') return admin(`only the server admin may delete databases (${db})`);
    return admin(`${verb} /${db} needs the server admin`);
  }
  const [head = '', ...tail] = rest;
  if (head === '_design' || head.startsWith('_design/')) return designRule(verb, [...head.split('/'), ...tail]);
  if (head === '_local' || head.startsWith('_local/')) {
    // pouchdb-security reads a database's members from this document: writing it would open the
    // database (CouchDB keeps `_security` elsewhere; there it is an ordinary local document).
    if ([...head.split('/'), ...tail].slice(0, 2).join('/') === SECURITY_DOC_ID) return admin(`${SECURITY_DOC_ID} holds the database's members on the embedded server: only the server admin may use it`);
    if (READ_METHODS.has(verb) || verb === 'DELETE') return anyone();
    if (verb === 'PUT' && rest.length <= 2) return anyone('json', 'single');
    return admin(`${verb} on _local documents needs the server admin`);
  }
  if (head.startsWith('_')) {
    if (rest.length === 1 && READ_METHODS.has(verb) && DATABASE_READS.has(head)) {
      return head === '_changes' && query.has('selector') ? { ...anyone(), selector: 'query' } : anyone();
    }
    if (rest.length === 1 && verb === 'POST' && DATABASE_POSTS[head] !== undefined) {
      const rule = anyone(DATABASE_POSTS[head], head === '_bulk_docs' ? 'bulk' : undefined);
      if (head === '_find' || head === '_explain') return { ...rule, selector: 'body' };
      return head === '_changes' && query.has('selector') ? { ...rule, selector: 'query' } : rule;
    }
    return admin(`${verb} /${db}/${head} needs the server admin`);
  }
  // An ordinary document, or (with more segments) one of its attachments.
  if (rest.length === 1) {
    if (READ_METHODS.has(verb) || verb === 'DELETE') return anyone();
    if (verb === 'PUT') return anyone('json', 'single');
    if (verb === 'COPY') return anyone('raw', 'copy');
    // `POST /db/id` is express-pouchdb's multipart form upload (Fauxton's attachment form).
    return admin(`${verb} on a document needs the server admin`);
  }
  if (READ_METHODS.has(verb) || verb === 'PUT' || verb === 'DELETE') return anyone('raw');
  return admin(`${verb} on an attachment needs the server admin`);
}

/** `segments` = ['_design', name, ...]: reads and view queries for anyone, the rest admin. */
function designRule(verb: string, segments: string[]): RouteRule {
  const [, , handler] = segments;
  if (handler !== undefined && DESIGN_HANDLERS.has(handler)) return admin(`design document ${handler} handlers need the server admin`);
  if (READ_METHODS.has(verb)) return anyone();
  if (verb === 'POST' && handler === '_view' && segments.length === 4) return anyone('json');
  return admin('only the server admin may write design documents');
}

/** Why a non-admin may not write document `id`, or null when it is an ordinary or `_local` document. */
export function reservedIdProblem(id: unknown): string | null {
  if (typeof id !== 'string' || !id.startsWith('_')) return null;
  if (id === SECURITY_DOC_ID) return `${SECURITY_DOC_ID} holds the database's members on the embedded server: only the server admin may write it`;
  if (id.startsWith('_local/')) return null;
  if (id.startsWith('_design/')) return 'only the server admin may write design documents';
  return `document ids starting with _ are reserved (${id.slice(0, 40)})`;
}

/**
 * For a non-admin's write of kind `writes`: why it is refused, or null. `body` is the parsed
 * JSON body (undefined when there is none or it is not JSON), `queryId` express-pouchdb's
 * `?id=`, `destination` the COPY header, `contentType` the request's.
 */
export function documentWriteProblem(
  writes: DocumentWrite,
  request: { body?: unknown; queryId?: string | null; destination?: string; contentType?: string },
): string | null {
  if (writes === 'copy') {
    const destination = request.destination ?? '';
    return reservedIdProblem(destination) ?? reservedIdProblem(safeDecode(destination));
  }
  if (/^multipart\//i.test(request.contentType ?? '')) return 'multipart document writes need the server admin';
  if (writes === 'bulk') {
    const docs = (request.body as { docs?: unknown } | undefined)?.docs;
    if (!Array.isArray(docs)) return null;
    for (const doc of docs) {
      const problem = reservedIdProblem((doc as { _id?: unknown } | null)?._id);
      if (problem) return problem;
    }
    return null;
  }
  const bodyId = (request.body as { _id?: unknown } | undefined)?._id;
  return reservedIdProblem(bodyId) ?? reservedIdProblem(request.queryId ?? undefined);
}

/**
 * In a `_bulk_docs` body larger than the document limit, the first document (by its id, or
 * its position) whose JSON exceeds `maxBytes`.
 */
export function oversizedDocument(body: unknown, maxBytes: number): string | null {
  const docs = (body as { docs?: unknown } | undefined)?.docs;
  if (!Array.isArray(docs)) return null;
  for (let i = 0; i < docs.length; i++) {
    const size = Buffer.byteLength(JSON.stringify(docs[i]) ?? '');
    if (size > maxBytes) {
      const id = (docs[i] as { _id?: unknown } | null)?._id;
      return typeof id === 'string' ? id : `docs[${i}]`;
    }
  }
  return null;
}

/**
 * What is wrong with the shape of the documents a write carries, or null: the first document
 * (`_id`, or its place in a `_bulk_docs`) that
 * - is nested deeper than `maxDepth` levels: pouchdb-server's map functions and filters copy a
 *   document recursively and fail on one a few thousand levels deep, so such a document would
 *   be in no index and no feed, a task no worker ever sees; or
 * - holds a `__proto__` key at any depth: PouchDB copies a document with plain assignment
 *   before storing it, which sets the copy's prototype instead of a key, so `{"repeat":
 *   {"days": 1, "__proto__": {}}}` was stored as `{"repeat": {"days": 1}}` without a word
 *   (CouchDB keeps the key, and the worker reports it as unknown).
 * One walk with its own stack, so its cost is bounded by the request's size, never its depth.
 */
export function documentShapeProblem(body: unknown, maxDepth: number): string | null {
  const bulk = (body as { docs?: unknown } | undefined)?.docs;
  const docs = Array.isArray(bulk) ? bulk : [body];
  for (let i = 0; i < docs.length; i++) {
    const doc = docs[i];
    if (typeof doc !== 'object' || doc === null) continue;
    const problem = shapeProblem(doc, maxDepth);
    if (problem !== null) {
      const id = (doc as { _id?: unknown })._id;
      return `${typeof id === 'string' ? id : Array.isArray(bulk) ? `docs[${i}]` : 'the document'}: ${problem}`;
    }
  }
  return null;
}

/**
 * Whether the JSON text of a write may break documentShapeProblem's rules, from the bytes alone:
 * nesting past `maxDepth` levels below the documents (`wrapperLevels` for the body's own
 * objects: 1 for a document, 3 for `{"docs": [...]}`), a `"__proto__"`, or a `\u` escape (which
 * could spell one). A scan of the bytes costs about 2 ms a megabyte where the walk over the
 * parsed objects costs 30: the walk runs only when this says it may find something.
 */
export function shapeMayBeWrong(text: Buffer, maxDepth: number, wrapperLevels: number): boolean {
  if (text.includes('__proto__') || text.includes('\\u')) return true;
  let depth = 0;
  let inString = false;
  const limit = maxDepth + wrapperLevels;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

interface Place {
  value: object;
  depth: number;
  key: string;
  parent: Place | null;
}

function shapeProblem(doc: object, maxDepth: number): string | null {
  const stack: Place[] = [];
  // A top-level `__proto__` starts with `_`: PouchDB refuses it ("Bad special document member"), as CouchDB does.
  for (const [key, value] of Object.entries(doc)) {
    if (typeof value === 'object' && value !== null) stack.push({ value, depth: 1, key, parent: null });
  }
  while (stack.length > 0) {
    const place = stack.pop()!;
    if (place.depth > maxDepth) return `${topField(place)} is nested more than ${maxDepth} levels deep`;
    for (const [key, inner] of Object.entries(place.value)) {
      if (key === '__proto__') return prototypeKeyProblem(key, place);
      if (typeof inner === 'object' && inner !== null) stack.push({ value: inner, depth: place.depth + 1, key, parent: place });
    }
  }
  return null;
}

function topField(place: Place): string {
  let top = place;
  while (top.parent !== null) top = top.parent;
  return top.key;
}

function prototypeKeyProblem(key: string, parent: Place): string {
  const path: string[] = [key];
  for (let at: Place | null = parent; at !== null; at = at.parent) path.unshift(at.key);
  return `${path.join('.')}: a "__proto__" key would be dropped without a word by the embedded server's storage (PouchDB takes it for the object's prototype); rename it`;
}

/** A query value as express-pouchdb reads it: JSON when it parses as a JSON string, else as sent. */
export function jsonStringOrSelf(value: string): string {
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'string' ? parsed : value;
  } catch {
    return value;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Whether `host` (a Host header) names this server: loopback names or a name the user allowed. */
export function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (!host) return false;
  return allowed.has(host.trim().toLowerCase());
}

/**
 * Every Host header value this server answers to: the loopback names, the bound address, and
 * `extra` names (`name` or `name:port`) with this port; a bare name too where the port is 80.
 */
export function allowedHostValues(port: number, bindHost: string, extra: readonly string[]): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  if (bindHost && bindHost !== '0.0.0.0' && bindHost !== '::') names.push(bindHost.includes(':') && !bindHost.startsWith('[') ? `[${bindHost}]` : bindHost);
  const values = new Set<string>();
  const add = (name: string): void => {
    values.add(`${name}:${port}`.toLowerCase());
    if (port === 80) values.add(name.toLowerCase());
  };
  names.forEach(add);
  for (const entry of extra) {
    const value = entry.trim().toLowerCase();
    // `name:port` or `[v6]:port` as given; a bare name (or v6 address) gets this server's port.
    if (/^\[[^\]]+\]:\d+$/.test(value) || /^[^:]+:\d+$/.test(value)) values.add(value);
    else add(value.includes(':') && !value.startsWith('[') ? `[${value}]` : value);
  }
  return values;
}

/** A peer address on this machine (IPv4 loopback, IPv6 loopback, or IPv4-mapped loopback). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

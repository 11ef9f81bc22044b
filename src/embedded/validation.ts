/**
 * `validate_doc_update` on the embedded server: what pouchdb-validation (express-pouchdb's
 * `validation` part) does, with the design documents read once per database instead of once per
 * document written.
 *
 * pouchdb-validation reads every design document (`_all_docs` from `_design/` with their bodies)
 * for each document of a `_bulk_docs`, before it knows whether any of them has a validator: in a
 * database with `after init`'s five design documents, two `_bulk_docs` of 3,000 task documents
 * took 2.5 times as long as in a database without them (measured: 2.57 s against 1.04 s), and a
 * worker writes nothing else. Here the validators of a database are read on its first write and
 * kept until a design document of that database is written or deleted through this server.
 *
 * The rest is pouchdb-validation's behaviour, unchanged: design and `_local` documents are not
 * validated; each validator is called as CouchDB calls it, `(newDoc, oldDoc, userCtx, secObj)`
 * with `this` the design document and `newDoc._revisions` the stored document's; a thrown
 * `{forbidden}` answers 403, `{unauthorized}` 401, anything else 500; a `_bulk_docs` writes the
 * documents that pass and answers an error row for each one that does not. Validators run in the
 * server's process, unsandboxed (couchdb-eval), which is why only the server admin may write a
 * design document here (guard-rules.ts).
 */
import { randomUUID } from 'node:crypto';

/** A design document's validator, compiled. */
interface Validator {
  designDoc: Record<string, unknown>;
  func: (newDoc: unknown, oldDoc: unknown, userCtx: unknown, secObj: unknown) => void;
}

interface WriteOptions {
  userCtx?: unknown;
  secObj?: unknown;
  [key: string]: unknown;
}

type Doc = Record<string, unknown> & { _id?: string };

/** The part of a PouchDB database this uses (before any wrapper). */
export interface ValidatedDb {
  allDocs(options: Record<string, unknown>): Promise<{ rows: Array<{ doc?: Record<string, unknown> }> }>;
  get(id: string, options: Record<string, unknown>): Promise<Doc>;
  info(): Promise<{ db_name: string }>;
}

interface WrapperArgs {
  base: ValidatedDb;
  options: WriteOptions;
  doc?: Doc;
  docs?: Doc[];
  docId?: string;
  rev?: string;
  attachmentId?: string;
  type?: string;
}

type Original = () => Promise<unknown>;

const coucheval = require('couchdb-eval') as {
  evaluate(requireContext: unknown, extraVars: Record<string, unknown>, program: string): Validator['func'];
  wrapExecutionError(err: unknown): Error;
};
const { buildUserContextObject } = require('couchdb-objects') as { buildUserContextObject(info: { db_name: string }): unknown };
const wrappers = require('pouchdb-wrappers') as { installWrapperMethods(db: unknown, handlers: Record<string, unknown>): void };
const PouchPluginError = require('pouchdb-plugin-error') as new (options: { name: string; message: string; status: number }) => Error;

/** The validators of each database, as a promise so that concurrent first writes read them once. */
const validatorCache = new WeakMap<ValidatedDb, Promise<Validator[]>>();

function isDesignId(id: unknown): boolean {
  return String(id).startsWith('_design/');
}

function validatorsOf(db: ValidatedDb): Promise<Validator[]> {
  let cached = validatorCache.get(db);
  if (!cached) {
    cached = db.allDocs({ startkey: '_design/', endkey: '_design0', include_docs: true }).then(({ rows }) =>
      rows
        .map((row) => row.doc)
        .filter((doc): doc is Record<string, unknown> => doc !== undefined && typeof doc.validate_doc_update === 'string')
        .map((designDoc) => ({ designDoc, func: coucheval.evaluate(designDoc, {}, designDoc.validate_doc_update as string) })),
    );
    // A design document that does not compile fails this write, and is read again on the next.
    cached.catch(() => validatorCache.delete(db));
    validatorCache.set(db, cached);
  }
  return cached;
}

/** A write that may change a design document: the cache is dropped before and after it. */
async function writingDesign<T>(db: ValidatedDb, changesDesign: boolean, write: () => Promise<T>): Promise<T> {
  if (!changesDesign) return write();
  validatorCache.delete(db);
  try {
    return await write();
  } finally {
    validatorCache.delete(db);
  }
}

async function validate(db: ValidatedDb, newDoc: Doc, options: WriteOptions): Promise<void> {
  const id = String(newDoc._id);
  if (isDesignId(id) || id.startsWith('_local')) return;
  const validators = await validatorsOf(db);
  if (validators.length === 0) return;
  const [userCtx, oldDoc] = await Promise.all([
    options.userCtx !== undefined ? options.userCtx : db.info().then(buildUserContextObject),
    db.get(id, { revs: true }).catch(() => null),
  ]);
  options.userCtx = userCtx;
  if (options.secObj === undefined) options.secObj = {};
  newDoc._revisions = oldDoc?._revisions;
  try {
    for (const { designDoc, func } of validators) func.call(designDoc, newDoc, oldDoc, userCtx, options.secObj);
  } catch (err) {
    const thrown = (err ?? {}) as { forbidden?: unknown; unauthorized?: unknown };
    if (thrown.unauthorized !== undefined) throw new PouchPluginError({ name: 'unauthorized', message: String(thrown.unauthorized), status: 401 });
    if (thrown.forbidden !== undefined) throw new PouchPluginError({ name: 'forbidden', message: String(thrown.forbidden), status: 403 });
    throw coucheval.wrapExecutionError(err);
  }
}

/** The document an attachment write leaves, validated as the whole document. */
async function withAttachment(args: WrapperArgs, attach: boolean): Promise<Doc> {
  const current = await args.base.get(args.docId!, { rev: args.rev, revs: true }).catch((err: unknown) => {
    if (attach) return { _id: args.docId } as Doc;
    throw err;
  });
  const attachments = { ...((current._attachments as Record<string, unknown> | undefined) ?? {}) };
  if (attach) attachments[args.attachmentId!] = { content_type: args.type, data: args.doc };
  else delete attachments[args.attachmentId!];
  return { ...current, _attachments: attachments };
}

const handlers = {
  put(original: Original, args: WrapperArgs): Promise<unknown> {
    return writingDesign(args.base, isDesignId(args.doc!._id), async () => {
      await validate(args.base, args.doc!, args.options);
      return original();
    });
  },
  post(original: Original, args: WrapperArgs): Promise<unknown> {
    args.doc!._id = args.doc!._id ?? randomUUID();
    return handlers.put(original, args);
  },
  remove(original: Original, args: WrapperArgs): Promise<unknown> {
    args.doc!._deleted = true;
    return handlers.put(original, args);
  },
  /** Each document is validated alone: the ones that pass are written, the others answer an error row. */
  bulkDocs(original: Original, args: WrapperArgs): Promise<unknown> {
    const docs = args.docs!;
    return writingDesign(args.base, docs.some((doc) => isDesignId(doc._id)), async () => {
      const refused: Array<Error & { id?: string }> = [];
      const refusedDocs = new Set<Doc>();
      await Promise.all(
        docs.map(async (doc) => {
          doc._id = doc._id ?? randomUUID();
          try {
            await validate(args.base, doc, args.options);
          } catch (err) {
            (err as Error & { id?: string }).id = doc._id;
            refused.push(err as Error);
            refusedDocs.add(doc);
          }
        }),
      );
      if (refused.length === 0) return original();
      // The documents that pass, in the order they were sent.
      args.docs = docs.filter((doc) => !refusedDocs.has(doc));
      return [...refused, ...((await original()) as unknown[])];
    });
  },
  async putAttachment(original: Original, args: WrapperArgs): Promise<unknown> {
    await validate(args.base, await withAttachment(args, true), args.options);
    return original();
  },
  async removeAttachment(original: Original, args: WrapperArgs): Promise<unknown> {
    await validate(args.base, await withAttachment(args, false), args.options);
    return original();
  },
};

/** Installs the validating writes on a database express-pouchdb opened (its dbWrapper calls this). */
export function installValidation(db: unknown): void {
  wrappers.installWrapperMethods(db, handlers);
}

/**
 * The indexes and views the dashboard, `after status` and the library API read many tasks
 * through, created by `after init` beside the worker's own (design.ts). Each query they make
 * has one, so that a list page, a search or the counts answer in milliseconds at a million tasks.
 *
 * CouchDB: Mango indexes only (Erlang, no `couchjs`, SPEC §7), kept up to date in the
 * background by CouchDB's indexer and read through their views (`_view`, `update=lazy`: never
 * waiting for an update). A Mango index's view has a `_count` reduce, so the
 * `[worker, status, date]` index the worker already keeps also gives the counts by worker and
 * status (`group_level=2`) and the job index the job names (`group_level=1`).
 *
 * pouchdb-server: its Mango indexes cannot be read as views, so the same keys come from the
 * JavaScript views of `_design/after-lists` (run in-process there, not in a separate process),
 * which the embedded server keeps up to date by itself (embedded/index-warmer.ts).
 */
import type { ServerInfo } from '../types';

/** A Mango index as design.ts's MangoIndex (declared here too: design.ts imports this module). */
export interface MangoIndex {
  ddoc: string;
  name: string;
  fields: readonly string[];
}

/** Tasks by job name (the long form, `job.name`), status and date. */
export const JOB_NAME_STATUS_DATE: MangoIndex = { ddoc: 'after-job-status-date', name: 'job-status-date', fields: ['job.name', 'status', 'date'] };
/** The same for tasks that name their job in the short form (`"job": "send"`): only those. */
export const JOB_STRING_STATUS_DATE: MangoIndex & { partial: Record<string, unknown> } = {
  ddoc: 'after-jobstr-status-date',
  name: 'jobstr-status-date',
  fields: ['job', 'status', 'date'],
  partial: { job: { $type: 'string' } },
};
/** Tasks that wait for others (`after`), to find what waits for a task. */
export const DEPENDENTS: MangoIndex & { partial: Record<string, unknown> } = {
  ddoc: 'after-dependents',
  name: 'dependents',
  fields: ['after'],
  partial: { after: { $type: 'array' } },
};
/** Repeating tasks by date: the schedules. */
export const REPEATING: MangoIndex & { partial: Record<string, unknown> } = {
  ddoc: 'after-repeating',
  name: 'repeating',
  fields: ['date'],
  partial: { repeat: { $exists: true } },
};

/** The dashboard's Mango indexes (CouchDB only: pouchdb-server reads `_design/after-lists`). */
export function dashboardIndexesFor(kind: ServerInfo['kind']): ReadonlyArray<MangoIndex & { partial?: Record<string, unknown> }> {
  return kind === 'couchdb' ? [JOB_NAME_STATUS_DATE, JOB_STRING_STATUS_DATE, DEPENDENTS, REPEATING] : [];
}

export const LISTS_DOC_ID = '_design/after-lists';

/** The job name of a document in either form, as the view below computes it. */
const JOB_NAME_JS = "var job = typeof doc.job === 'string' ? doc.job : (doc.job && typeof doc.job.name === 'string' ? doc.job.name : null);";

/** The one view of `_design/after-lists`, read by the prefixes below. */
export const LISTS_VIEW = `${LISTS_DOC_ID}/_view/tasks`;
/** Key prefixes of LISTS_VIEW: each is one index of CouchDB's. */
export const LISTS_KEYS = {
  /** ['c', worker, status]: the counts (`group_level=3`). */
  counts: 'c',
  /** ['s', status, date, id] */
  status: 's',
  /** ['w', worker, status, date, id] */
  worker: 'w',
  /** ['j', job, status, date, id]; job names with `group_level=2`. */
  job: 'j',
  /** ['r', date, id]: repeating tasks. */
  repeating: 'r',
  /** ['a', id]: the tasks that name `id` in their `after`. */
  dependents: 'a',
} as const;

/**
 * pouchdb-server's lists: one view with the keys of CouchDB's indexes behind a prefix each, so
 * that building and updating it reads each document once (PouchDB builds each view of a design
 * document on its own pass over every document: 100,000 tasks times six views took minutes).
 * The task id ends each list's key: PouchDB has no `startkey_docid` to resume a page inside
 * equal keys. A task without a status is waiting (SPEC §3), listed and counted so at once.
 */
export const LISTS_DOC_BODY = {
  language: 'javascript',
  views: {
    tasks: {
      map:
        "function (doc) { if (typeof doc.worker !== 'string') { return; } " +
        "var status = doc.status === undefined || doc.status === null ? 'waiting' : doc.status; " +
        "emit(['c', doc.worker, typeof status === 'string' ? status : String(status)], null); " +
        "if (typeof doc.date !== 'string' || typeof status !== 'string') { return; } " +
        "emit(['s', status, doc.date, doc._id], null); emit(['w', doc.worker, status, doc.date, doc._id], null); " +
        `${JOB_NAME_JS} if (job !== null) { emit(['j', job, status, doc.date, doc._id], null); } ` +
        "if (doc.repeat !== undefined && doc.repeat !== null) { emit(['r', doc.date, doc._id], null); } " +
        "if (Array.isArray(doc.after)) { for (var i = 0; i < doc.after.length; i++) { if (typeof doc.after[i] === 'string') { emit(['a', doc.after[i]], null); } } } }",
      reduce: '_count',
    },
  },
};

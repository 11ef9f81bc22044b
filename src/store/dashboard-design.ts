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
import type { MangoIndex } from './design';
import type { ServerInfo } from './types';

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

/** The job name of a document in either form, as the views below compute it. */
const JOB_NAME_JS = "var job = typeof doc.job === 'string' ? doc.job : (doc.job && typeof doc.job.name === 'string' ? doc.job.name : null);";
/**
 * Documents a list shows: a task with a string worker and date, and a status (none means
 * `waiting`, SPEC §3: a task posted without one is listed as waiting at once).
 */
const LISTED_JS =
  "if (typeof doc.worker !== 'string' || typeof doc.date !== 'string' || (doc.status !== undefined && typeof doc.status !== 'string')) { return; } var status = doc.status === undefined ? 'waiting' : doc.status;";

/**
 * pouchdb-server's list views: the keys of the Mango indexes above and of design.ts's, and the
 * task id last, since PouchDB has no `startkey_docid` to resume a page inside equal keys.
 */
export const LISTS_DOC_BODY = {
  language: 'javascript',
  views: {
    by_status: { map: `function (doc) { ${LISTED_JS} emit([status, doc.date, doc._id], null); }` },
    by_worker: { map: `function (doc) { ${LISTED_JS} emit([doc.worker, status, doc.date, doc._id], null); }` },
    by_job: { map: `function (doc) { ${LISTED_JS} ${JOB_NAME_JS} if (job !== null) { emit([job, status, doc.date, doc._id], null); } }`, reduce: '_count' },
    dependents: {
      map: "function (doc) { if (typeof doc.worker !== 'string' || !Array.isArray(doc.after)) { return; } for (var i = 0; i < doc.after.length; i++) { if (typeof doc.after[i] === 'string') { emit(doc.after[i], null); } } }",
    },
    repeating: { map: "function (doc) { if (typeof doc.worker === 'string' && doc.repeat !== undefined && doc.repeat !== null && typeof doc.date === 'string') { emit([doc.date, doc._id], null); } }" },
  },
};

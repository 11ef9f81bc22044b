/**
 * What the dashboard's pages read, each assembled from a few index reads (store/task-pages.ts,
 * task-counts.ts, run-stats.ts, instances.ts): the overview, a list page, a search, a task's
 * story, the schedules and the instances. The page gets summaries, never whole documents, except
 * on a task's own page.
 */
import type { AfterConfig } from '../config/types';
import { readWorkers, type InstanceView } from '../store/for-operators/instances';
import type { ReadSide } from '../store/for-operators/read-views';
import { readInstanceFigures } from '../store/for-operators/run-stats';
import { readStatusCountsWithLag, type StatusCount } from '../store/for-operators/task-counts';
import { readDependents, readJobNames, readRepeatingPage, readTaskPage, searchById, type PageCursor, type PageQuery } from '../store/for-operators/task-pages';
import { readDependencyStates, type DependencyState } from '../store/for-operators/task-queries';
import { parseRepeat } from '../task/repeat';
import { repeatInWords } from '../task/repeat-words';
import { previewSchedule } from '../task/schedule-preview';
import type { RunFigures } from '../stats/run-figures';
import type { HistoryEntry, TaskDoc } from '../types';
import { isTaskDoc, readTask, summarize, type TaskSummary } from './dashboard-data';
import { waitingReason, type WaitingReason } from './waiting-reason';

export interface InstanceRow extends InstanceView {
  /** Its part of the worker name's due tasks: 1 / live instances (rendezvous split). */
  share: number;
  /** Its runs of the last 10 minutes. */
  recent: RunFigures | null;
}

export interface Overview {
  database: string;
  counts: StatusCount[];
  /** Changes the counts may not show yet (0: exact). */
  countsLag: number;
  instances: InstanceRow[];
  paused: string[];
  nextDue: TaskSummary[];
  failures: TaskSummary[];
}

export interface ListRow extends TaskSummary {
  /** For a task still to run: when, and why not yet. */
  why?: WaitingReason;
}

export async function readOverview(read: ReadSide): Promise<Overview> {
  const [counts, workers, waiting, failures, figures] = await Promise.all([
    readStatusCountsWithLag(read),
    readWorkers(read.conn),
    readTaskPage(read, { status: 'waiting', limit: 10 }),
    readTaskPage(read, { status: 'error', order: 'desc', limit: 10 }),
    readInstanceFigures(read).catch(() => new Map<string, RunFigures>()),
  ]);
  return {
    database: `${read.conn.dbName} on ${read.conn.displayUrl}`,
    counts: counts.counts,
    countsLag: counts.lag,
    instances: instanceRows(workers.instances, figures),
    paused: workers.paused,
    nextDue: waiting.tasks.filter(isTaskDoc).map(summarize),
    failures: failures.tasks.filter(isTaskDoc).map(summarize),
  };
}

function instanceRows(instances: readonly InstanceView[], figures: ReadonlyMap<string, RunFigures>): InstanceRow[] {
  const live = instances.filter((i) => i.live);
  return live.map((i) => ({ ...i, share: 1 / live.filter((other) => other.worker === i.worker).length, recent: figures.get(i.instance) ?? null }));
}

/** A list page; a task still to run comes with when and why not yet. */
export async function readListPage(read: ReadSide, query: PageQuery, config: AfterConfig): Promise<{ rows: ListRow[]; next: PageCursor | null }> {
  const [page, workers] = await Promise.all([readTaskPage(read, query), readWorkers(read.conn)]);
  const pending = ['waiting', 'scheduled'].includes(query.status);
  const nowMs = read.conn.clock.dbNow();
  const deps = pending ? await dependencyStatesOf(read, page.tasks) : new Map<string, DependencyState>();
  const rows = page.tasks.filter(isTaskDoc).map((doc): ListRow => {
    const row: ListRow = summarize(doc);
    if (pending) row.why = whyOf(doc, { nowMs, workers, deps, config });
    return row;
  });
  return { rows, next: page.next };
}

/** One read of every task the page's tasks wait for. */
async function dependencyStatesOf(read: ReadSide, docs: readonly TaskDoc[]): Promise<Map<string, DependencyState>> {
  const ids = [...new Set(docs.flatMap((doc) => (Array.isArray(doc.after) ? doc.after.filter((id): id is string => typeof id === 'string' && id !== '' && !id.startsWith('_')) : [])))].slice(0, 500);
  return new Map((await readDependencyStates(read.conn, ids)).map((dep) => [dep.id, dep]));
}

function whyOf(doc: TaskDoc, ctx: { nowMs: number; workers: Awaited<ReturnType<typeof readWorkers>>; deps: ReadonlyMap<string, DependencyState>; config: AfterConfig }): WaitingReason {
  const worker = String(doc.worker);
  const job = typeof doc.job === 'string' ? doc.job : typeof (doc.job as { name?: unknown })?.name === 'string' ? (doc.job as { name: string }).name : '';
  const named = Array.isArray(doc.after) ? doc.after.filter((id): id is string => typeof id === 'string') : [];
  return waitingReason(doc, {
    nowMs: ctx.nowMs,
    instances: ctx.workers.instances.filter((i) => i.live && i.worker === worker),
    workerPaused: ctx.workers.paused.includes(worker),
    dependencies: named.map((id) => ctx.deps.get(id) ?? { id, status: null, repeats: false }),
    limits: [worker, `${worker}/${job}`].filter((key) => ctx.config.limits[key] !== undefined),
    claimGraceMs: ctx.config.worker.claim_grace_ms,
  });
}

export type JobNames = Array<{ job: string; count: number }>;

/**
 * The job names and their counts. On pouchdb-server a grouped read of a view goes over every
 * row (it keeps no reductions), too slow to repeat for each search at 100,000 tasks: there, past
 * LARGE tasks, the names are kept a minute, and a stale answer is given at once while a fresh
 * one is read behind it. Elsewhere (CouchDB, a small database) they are read each time.
 */
export class JobNamesCache {
  private value: JobNames | undefined;
  private readAtMs = 0;
  private large = false;
  private reading: Promise<JobNames> | undefined;

  constructor(private readonly maxAgeMs = 60_000) {}

  get(read: ReadSide): Promise<JobNames> {
    const keep = this.large && read.kind !== 'couchdb';
    if (this.value && keep && Date.now() - this.readAtMs < this.maxAgeMs) return Promise.resolve(this.value);
    this.reading ??= readJobNames(read)
      .then((names) => {
        this.value = names;
        this.readAtMs = Date.now();
        this.large = names.reduce((sum, n) => sum + n.count, 0) > LARGE;
        return names;
      })
      .finally(() => (this.reading = undefined));
    return this.value && keep ? Promise.resolve(this.value) : this.reading;
  }
}

/** Tasks past which pouchdb-server's grouped read of the job names is kept a minute. */
const LARGE = 10_000;

/** Tasks whose id starts with `q`, and the job names that start with it. */
export async function readSearch(read: ReadSide, q: string, jobNames: JobNamesCache, after?: string): Promise<{ tasks: TaskSummary[]; next: string | null; jobs: JobNames }> {
  const text = q.trim();
  const [byId, jobs] = await Promise.all([searchById(read, text, after === undefined ? {} : { after }), jobNames.get(read)]);
  const lower = text.toLowerCase();
  return { tasks: byId.tasks.filter(isTaskDoc).map(summarize), next: byId.next, jobs: jobs.filter((j) => j.job.toLowerCase().startsWith(lower)).slice(0, 20) };
}

export interface TaskStory {
  task: TaskDoc;
  /** Its runs, oldest first: `history` (bounded by worker.history_limit), or `last_run` alone. */
  runs: Array<Partial<Omit<HistoryEntry, 'status'>> & { status: string }>;
  /** The next dates of a repeating task (what `after next` prints), or its one date. */
  next: { summary: string; rows: Array<{ utc: string; local: string; overdue: boolean }>; end?: string } | null;
  waitsFor: DependencyState[];
  waitedBy: TaskSummary[];
  why: WaitingReason;
}

export async function readStory(read: ReadSide, id: string, config: AfterConfig): Promise<TaskStory> {
  const task = await readTask(read.conn, id);
  const named = Array.isArray(task.after) ? [...new Set(task.after.filter((dep): dep is string => typeof dep === 'string' && dep !== '' && !dep.startsWith('_')))].slice(0, 100) : [];
  const [waitsFor, waitedBy, workers] = await Promise.all([readDependencyStates(read.conn, named), readDependents(read, id), readWorkers(read.conn)]);
  const nowMs = read.conn.clock.dbNow();
  const preview = previewSchedule({ task }, { count: 5, fromMs: nowMs });
  const history = Array.isArray(task.history) ? [...task.history].reverse() : [];
  const runs = history.length > 0 ? history : task.last_run ? [{ ...task.last_run, status: typeof task.status === 'string' ? task.status : 'waiting' }] : [];
  return {
    task,
    runs,
    next: preview.ok ? { summary: preview.preview.summary, rows: preview.preview.rows.map(({ utc, local, overdue }) => ({ utc, local, overdue })), ...(preview.preview.end ? { end: preview.preview.end } : {}) } : null,
    waitsFor,
    waitedBy: waitedBy.filter(isTaskDoc).map(summarize),
    why: whyOf(task, { nowMs, workers, deps: new Map(waitsFor.map((dep) => [dep.id, dep])), config }),
  };
}

export interface ScheduleRow extends TaskSummary {
  /** The rule in words ("weekdays at 09:00 Europe/Paris, jitter 5 min"). */
  rule: string;
  /** How its last run ended. */
  last: { status: string; finished_at: string; error?: string } | null;
}

/** Every repeating task, by next date. */
export async function readSchedules(read: ReadSide, query: { worker?: string; cursor?: PageCursor; limit?: number }): Promise<{ rows: ScheduleRow[]; next: PageCursor | null }> {
  const page = await readRepeatingPage(read, query);
  const rows = page.tasks.filter(isTaskDoc).map((doc): ScheduleRow => {
    const parsed = parseRepeat(doc.repeat);
    const newest = Array.isArray(doc.history) ? doc.history[0] : undefined;
    const last = newest
      ? { status: newest.status, finished_at: newest.finished_at, ...(newest.error?.message ? { error: newest.error.message } : {}) }
      : doc.last_run
        ? { status: doc.error ? 'error' : 'done', finished_at: doc.last_run.finished_at }
        : null;
    return { ...summarize(doc), rule: parsed.ok ? repeatInWords(parsed.repeat) : `invalid repeat: ${parsed.message}`, last };
  });
  return { rows, next: page.next };
}

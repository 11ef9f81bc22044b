/**
 * Tasks that wait for other tasks (`"after": ["import-2026-11", "fx-rates"]`): what a task's
 * dependencies, as last read, mean for it. Pure: the worker reads the documents (and follows
 * their changes) and asks again whenever one changes.
 *
 * - Every dependency `done`: the task may run, at its date or at once if that has passed.
 * - One of them `error` or `canceled`: the task goes to `error` naming it, or runs anyway with
 *   `"after_failure": "run"`.
 * - A dependency that does not exist, one that repeats (it is `waiting` again after each run,
 *   so never `done` until its series ends), or a cycle (A after B, B after A: neither could ever
 *   run) is a mistake in the tasks, reported as `error` whatever `after_failure` says.
 * - Otherwise the task waits.
 *
 * Cycles are found by walking the `after` lists of the dependencies that are still pending,
 * breadth first, up to MAX_WALK tasks: a dependency that has finished cannot be waiting for this
 * task, so the walk stops there. A task further away than that is not looked at.
 */
import type { TaskDoc } from '../types';
import { quoteValue } from './dates';
import type { ParsedTask } from './validate';

/** The most tasks one cycle check reads. */
export const MAX_WALK = 200;

/** What the worker knows of one dependency: its status, whether it repeats, what it waits for. */
export interface DependencyView {
  status: string;
  repeats: boolean;
  after: readonly string[];
}

/** A dependency as read: its view, `null` when it does not exist, `undefined` when not read yet. */
export type DependencyLookup = (id: string) => DependencyView | null | undefined;

export type DependencyVerdict =
  /** Every dependency is `done` (or failed, with `after_failure: run`). */
  | { kind: 'satisfied' }
  /**
   * Not yet: `pending` are dependencies still to finish, `unread` the tasks (dependencies, or
   * tasks on their `after` chains) the worker has still to read for the verdict, `watched`
   * every task the verdict looked at (the dependencies and the chains walked): the ones to
   * follow, since a change to any of them may change it.
   */
  | { kind: 'waiting'; pending: string[]; unread: string[]; watched: string[] }
  /** The task goes to `error` with this message (`code` E_DEPENDENCY). */
  | { kind: 'failed'; message: string };

const FINISHED_BADLY = ['error', 'canceled'];
const FINISHED = ['done', ...FINISHED_BADLY];

/** The view of a task document as a dependency (`null` for a missing or deleted one). */
export function dependencyView(doc: TaskDoc | null | undefined): DependencyView | null {
  if (!doc || doc._deleted) return null;
  const after = Array.isArray(doc.after) ? doc.after.filter((id): id is string => typeof id === 'string') : [];
  return { status: typeof doc.status === 'string' ? doc.status : 'waiting', repeats: doc.repeat !== undefined && doc.repeat !== null, after };
}

export function dependencyVerdict(task: ParsedTask, lookup: DependencyLookup): DependencyVerdict {
  const direct = task.after ?? [];
  const pending: string[] = [];
  const unread: string[] = [];
  let failedOne: { id: string; status: string } | undefined;
  for (const id of direct) {
    const view = lookup(id);
    if (view === undefined) {
      unread.push(id);
      continue;
    }
    if (view === null) return failed(`after: task ${quoteValue(id)} does not exist`);
    if (view.repeats && view.status !== 'done') {
      return failed(`after: task ${quoteValue(id)} repeats, so it is never done (a dependency must run once)`);
    }
    if (view.status === 'done') continue;
    if (FINISHED_BADLY.includes(view.status)) failedOne ??= { id, status: view.status };
    else pending.push(id);
  }

  const walked = new Set<string>();
  const cycle = findCycle(task.id, pending, lookup, unread, walked);
  if (cycle !== undefined) return failed(`after: waits for itself through ${cycle.map((id) => quoteValue(id)).join(' → ')}`);

  if (failedOne !== undefined && task.afterFailure !== 'run') {
    return failed(`after: task ${quoteValue(failedOne.id)} ended ${failedOne.status}`);
  }
  if (pending.length > 0 || unread.length > 0) return { kind: 'waiting', pending, unread, watched: [...new Set([...direct, ...walked])] };
  return { kind: 'satisfied' };
}

/**
 * The chain from the task back to itself (`[task, a, b, task]`), if the pending dependencies'
 * `after` lists lead back to it. Tasks on the way that are not read yet go to `unread`.
 */
function findCycle(taskId: string, pending: readonly string[], lookup: DependencyLookup, unread: string[], walked: Set<string>): string[] | undefined {
  const cameFrom = new Map<string, string>(pending.map((id) => [id, taskId]));
  const queue = [...pending];
  let read = 0;
  while (queue.length > 0 && read < MAX_WALK) {
    const id = queue.shift()!;
    walked.add(id);
    const view = lookup(id);
    if (view === undefined) {
      if (!unread.includes(id)) unread.push(id);
      continue;
    }
    read++;
    if (view === null || FINISHED.includes(view.status)) continue;
    for (const next of view.after) {
      if (next === taskId) return [taskId, ...pathTo(id, cameFrom, taskId), taskId];
      if (cameFrom.has(next)) continue;
      cameFrom.set(next, id);
      queue.push(next);
    }
  }
  return undefined;
}

/** The walk's path from the task to `id` (the task itself left out). */
function pathTo(id: string, cameFrom: ReadonlyMap<string, string>, taskId: string): string[] {
  const path = [id];
  for (let at = cameFrom.get(id); at !== undefined && at !== taskId; at = cameFrom.get(at)) path.unshift(at);
  return path;
}

function failed(message: string): DependencyVerdict {
  return { kind: 'failed', message };
}

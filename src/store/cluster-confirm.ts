/**
 * SPEC §7 "Claims in a cluster": in a CouchDB cluster (n > 1) two writes from the same _rev
 * can both be accepted, one with 201 (a quorum of copies took it) and one with 202 (fewer
 * did), leaving a stored conflict. So a 202 is not ownership until a read of every copy
 * (`r` = n) with `conflicts=true` shows our revision winning and no other branch.
 */
import { CouchRequestError } from '../errors';
import type { Logger } from '../log';
import type { TaskDoc } from '../types';
import { docPath, type RequestOptions, type Response } from './connection';

type Request = <T>(options: RequestOptions) => Promise<Response<T>>;

/**
 * Whether the write that gave `written` its `_rev` is ours to act on. When it lost, its branch
 * is deleted, so the document does not keep a conflict nobody resolves.
 */
export async function confirmClusterWrite(request: Request, written: TaskDoc, replicas: number, log: Logger): Promise<boolean> {
  const ourRev = written._rev!;
  let current: TaskDoc & { _conflicts?: string[] };
  try {
    current = (await request<TaskDoc & { _conflicts?: string[] }>({
      path: docPath(written._id),
      qs: { conflicts: true, r: replicas },
    })).body;
  } catch (err) {
    // Deleted meanwhile, or the copies cannot be read: not confirmed is not ours; the caller
    // re-reads and decides again.
    if (!(err instanceof CouchRequestError && err.status === 404)) {
      log.warn(`could not confirm the write of task ${written._id}: ${(err as Error).message}`);
    }
    return false;
  }
  const conflicts = current._conflicts ?? [];
  if (current._rev === ourRev && conflicts.length === 0) return true;
  if (conflicts.includes(ourRev)) {
    try {
      await request({ method: 'DELETE', path: docPath(written._id), qs: { rev: ourRev } });
    } catch (err) {
      log.warn(`could not delete the losing revision ${ourRev} of task ${written._id}: ${(err as Error).message}`);
    }
  }
  return false;
}

/**
 * docs/spec.md §7 "Claims in a cluster": in a CouchDB cluster (n > 1) two writes from the same `_rev`
 * can both be accepted: each copy takes the first of them that reaches it and refuses the
 * other. The one that reached a quorum of copies gets 201, the others 202. Two quorums of n
 * copies share a copy, so at most one claim from a given revision gets 201:
 *
 * - a 201 claim is ownership;
 * - a 202 claim never is. A rival may hold the quorum, or may still get it: the copies that
 *   have not answered yet, or have not yet received ours by internal replication, accept a
 *   rival written from the same revision seconds later (seen on a 3-node cluster on loopback:
 *   a 202 claim that found no rival right after it, and a 201 rival 2.8 s later, both ran).
 *   Should every writer get 202 (three writers, one copy each; a node down), nobody runs the
 *   task now: the branch that survives carries a claim whose lease runs out, and the lease
 *   sweep takes the task over (at least once, one lease later).
 *
 * Branches: a writer that stands down deletes its branch when a rival sorts higher, so of a
 * split the highest branch always survives and the task is never lost. A loser that sorts
 * highest keeps its branch until the owner's next write (a lease extension every third of the
 * lease, or the result) makes the owner's branch the longer one, which CouchDB then shows.
 * Once the task has left `running`/`scheduled`, the claims left on other branches are deleted
 * (`sweepStaleBranches`).
 *
 * The rivals are found with `open_revs=all` and `r` = n, which merges the leaves of every copy.
 * A plain read, even `?conflicts=true&r=n`, returns the one copy CouchDB picks with that
 * copy's own `_conflicts`, and a copy that took only one of the writes has none (on the same
 * cluster it showed the rival in 6 of 48 races, `open_revs=all` in 69 of 69).
 */
import { CouchRequestError } from '../../errors';
import type { Logger } from '../../log';
import { revGeneration } from '../../revision';
import type { TaskDoc } from '../../types';
import { docPath, type RequestOptions, type Response } from '../connection';

type Request = <T>(options: RequestOptions) => Promise<Response<T>>;

/** A leaf revision as `open_revs=all&revs=true` gives it. */
type Leaf = TaskDoc & { _revisions?: { start: number; ids: string[] } };

/**
 * A claim that got 202 is not ours: delete its branch if a rival written from the same
 * revision sorts higher. Returns true when the branch was kept (it sorts highest): the caller
 * checks it again later with `dropIfOvertaken`.
 */
export async function standDown(request: Request, written: TaskDoc, replicas: number, log: Logger): Promise<boolean> {
  const ourRev = written._rev!;
  let leaves: Leaf[];
  try {
    leaves = await leafRevisions(request, written._id, replicas);
  } catch (err) {
    // The copies cannot be read: the branch stays, and the lease decides.
    log.warn(`could not read the branches of task ${written._id}: ${(err as Error).message}`);
    return true;
  }
  const ours = leaves.find((leaf) => ancestorRev(leaf, revGeneration(ourRev)) === ourRev);
  // Written over meanwhile (a cancel on top of our claim, say): that write decides.
  if (!ours || ours._rev !== ourRev || ours._deleted) return false;
  const rivals = rivalsOf(ours, leaves);
  const highest = [ourRev, ...rivals].sort(compareRevs).pop();
  log.debug(`task ${written._id}: the claim ${ourRev} reached fewer copies than a quorum${rivals.length > 0 ? ` and met ${rivals.join(', ')}` : ''}; standing down`);
  if (highest === ourRev) return true;
  await deleteRevision(request, written._id, ourRev, log);
  return false;
}

/**
 * A branch kept by `standDown`, looked at again: once a rival branch from the same revision
 * is longer (its owner wrote again: a lease extension, the result), ours can never be needed
 * and is deleted. True when there is nothing more to watch.
 */
export async function dropIfOvertaken(request: Request, written: TaskDoc, replicas: number, log: Logger): Promise<boolean> {
  const ourRev = written._rev!;
  const leaves = await leafRevisions(request, written._id, replicas);
  const ours = leaves.find((leaf) => leaf._rev === ourRev && !leaf._deleted);
  // Written on (the lease sweep took the task over on our branch) or deleted: settled.
  if (!ours) return true;
  const ourRivals = new Set(rivalsOf(ours, leaves));
  const overtaken = leaves.some((leaf) => {
    if (leaf._deleted || leaf === ours || revGeneration(leaf._rev) <= revGeneration(ourRev)) return false;
    const rival = ancestorRev(leaf, revGeneration(ourRev));
    return rival !== undefined && ourRivals.has(rival);
  });
  if (!overtaken) return false;
  log.debug(`task ${written._id}: the claim ${ourRev} that stood down was overtaken; deleting its branch`);
  await deleteRevision(request, written._id, ourRev, log);
  return true;
}

/**
 * After `written` took the task out of `running`/`scheduled` (a run's result, a hand-back, a
 * verdict), delete the claims and holds left on other branches by writers that stood down.
 */
export async function sweepStaleBranches(request: Request, written: TaskDoc, replicas: number, log: Logger): Promise<void> {
  let leaves: Leaf[];
  try {
    leaves = await leafRevisions(request, written._id, replicas);
  } catch (err) {
    log.debug(`task ${written._id}: could not read its branches: ${(err as Error).message}`);
    return;
  }
  const stale = leaves.filter((leaf) => !leaf._deleted && leaf._rev !== written._rev && (leaf.status === 'running' || leaf.status === 'scheduled'));
  for (const leaf of stale) await deleteRevision(request, written._id, leaf._rev!, log);
}

/** Revisions written from the same parent as `ours` by someone else (their branches may since be deleted or written on). */
export function rivalsOf(ours: Leaf, leaves: readonly Leaf[]): string[] {
  const ourRev = ours._rev!;
  const parent = ancestorRev(ours, revGeneration(ourRev) - 1);
  if (parent === undefined) return [];
  const rivals = new Set<string>();
  for (const leaf of leaves) {
    if (leaf === ours || ancestorRev(leaf, revGeneration(parent)) !== parent) continue;
    const rival = ancestorRev(leaf, revGeneration(ourRev));
    if (rival !== undefined && rival !== ourRev) rivals.add(rival);
  }
  return [...rivals];
}

/** The revision at `gen` on the branch `leaf` ends, from its `_revisions`. */
function ancestorRev(leaf: Leaf, gen: number): string | undefined {
  const revisions = leaf._revisions;
  if (!revisions) return revGeneration(leaf._rev) === gen ? leaf._rev : undefined;
  const index = revisions.start - gen;
  const id = revisions.ids[index];
  return index >= 0 && id !== undefined ? `${gen}-${id}` : undefined;
}

/** CouchDB's order of equal-length branches: the revision id compared as a string. */
function compareRevs(a: string, b: string): number {
  const byGen = revGeneration(a) - revGeneration(b);
  if (byGen !== 0) return byGen;
  const [idA, idB] = [a.slice(a.indexOf('-') + 1), b.slice(b.indexOf('-') + 1)];
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}

/**
 * The revision CouchDB shows once every copy has every branch: not deleted before deleted,
 * then the longest branch, then the highest revision id. Null when every leaf is deleted.
 */
export function winningLeaf(leaves: readonly Leaf[]): TaskDoc | null {
  const live = leaves.filter((leaf) => !leaf._deleted);
  if (live.length === 0) return null;
  const winner = [...live].sort((a, b) => compareRevs(a._rev!, b._rev!)).pop()!;
  const { _revisions: _history, ...doc } = winner;
  return doc;
}

/** Every leaf (deleted ones too) over all `replicas` copies; none when the document is missing. */
export async function leafRevisions(request: Request, id: string, replicas: number): Promise<Leaf[]> {
  try {
    const res = await request<Array<{ ok?: Leaf }>>({ path: docPath(id), qs: { open_revs: 'all', revs: true, r: replicas } });
    return (Array.isArray(res.body) ? res.body : []).flatMap((row) => (row.ok ? [row.ok] : []));
  } catch (err) {
    if (err instanceof CouchRequestError && err.status === 404 && err.code !== 'E_DB_MISSING') return [];
    throw err;
  }
}

async function deleteRevision(request: Request, id: string, rev: string, log: Logger): Promise<void> {
  try {
    await request({ method: 'DELETE', path: docPath(id), qs: { rev } });
  } catch (err) {
    log.warn(`could not delete the stale revision ${rev} of task ${id}: ${(err as Error).message}`);
  }
}

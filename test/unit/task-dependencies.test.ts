import { expect } from 'chai';
import { dependencyVerdict, dependencyView, MAX_WALK, type DependencyView } from '../../src/task/dependencies';
import { validateTask, type ParsedTask } from '../../src/task/validate';
import type { TaskDoc } from '../../src/types';

function task(id: string, fields: Record<string, unknown>): ParsedTask {
  const checked = validateTask({ _id: id, worker: 'w', date: '2026-01-05T09:00:00Z', job: 'succeeds', ...fields } as TaskDoc);
  if (!checked.ok) throw new Error(checked.message);
  return checked.task;
}

const view = (status: string, after: string[] = [], repeats = false): DependencyView => ({ status, after, repeats });

describe('dependencies: what the tasks a task waits for mean for it', () => {
  const cases: Array<{ name: string; after: string[]; afterFailure?: string; known: Record<string, DependencyView | null>; verdict: string; message?: RegExp; pending?: string[]; unread?: string[] }> = [
    { name: 'every dependency done', after: ['a', 'b'], known: { a: view('done'), b: view('done') }, verdict: 'satisfied' },
    { name: 'a chain link not done yet', after: ['a'], known: { a: view('waiting') }, verdict: 'waiting', pending: ['a'], unread: [] },
    { name: 'fan-in: two done, one running', after: ['a', 'b', 'c'], known: { a: view('done'), b: view('running'), c: view('done') }, verdict: 'waiting', pending: ['b'] },
    { name: 'a dependency not read yet', after: ['a', 'b'], known: { a: view('done') }, verdict: 'waiting', pending: [], unread: ['b'] },
    { name: 'a dependency ended error', after: ['a', 'b'], known: { a: view('done'), b: view('error') }, verdict: 'failed', message: /"b" ended error/ },
    { name: 'a dependency was canceled', after: ['a'], known: { a: view('canceled') }, verdict: 'failed', message: /"a" ended canceled/ },
    { name: 'a failed dependency with after_failure run', after: ['a', 'b'], afterFailure: 'run', known: { a: view('error'), b: view('done') }, verdict: 'satisfied' },
    { name: 'a failed dependency with after_failure run, another pending', after: ['a', 'b'], afterFailure: 'run', known: { a: view('error'), b: view('waiting') }, verdict: 'waiting', pending: ['b'] },
    { name: 'a missing dependency, whatever after_failure says', after: ['a', 'nope'], afterFailure: 'run', known: { a: view('done'), nope: null }, verdict: 'failed', message: /"nope" does not exist/ },
    { name: 'a repeating dependency', after: ['hourly'], known: { hourly: view('waiting', [], true) }, verdict: 'failed', message: /"hourly" repeats/ },
    { name: 'a repeating dependency whose series ended done', after: ['hourly'], known: { hourly: view('done', [], true) }, verdict: 'satisfied' },
    { name: 'a cycle of two', after: ['b'], known: { b: view('waiting', ['me']) }, verdict: 'failed', message: /"me" → "b" → "me"/ },
    { name: 'a cycle of three', after: ['b'], known: { b: view('waiting', ['c']), c: view('scheduled', ['me']) }, verdict: 'failed', message: /"me" → "b" → "c" → "me"/ },
    { name: 'a chain that only passes by a finished task is no cycle', after: ['b'], known: { b: view('waiting', ['c']), c: view('done', ['me']) }, verdict: 'waiting', pending: ['b'] },
    { name: 'a task on the chain not read yet', after: ['b'], known: { b: view('waiting', ['c']) }, verdict: 'waiting', pending: ['b'], unread: ['c'] },
    { name: 'a diamond (two paths to one task) is no cycle', after: ['b', 'c'], known: { b: view('waiting', ['d']), c: view('waiting', ['d']), d: view('waiting') }, verdict: 'waiting', pending: ['b', 'c'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const verdict = dependencyVerdict(task('me', { after: c.after, ...(c.afterFailure ? { after_failure: c.afterFailure } : {}) }), (id) => c.known[id]);
      expect(verdict.kind).to.equal(c.verdict);
      if (c.message) expect((verdict as { message: string }).message).to.match(c.message).and.match(/^after: /);
      if (c.pending) expect((verdict as { pending: string[] }).pending).to.deep.equal(c.pending);
      if (c.unread) expect((verdict as { unread: string[] }).unread).to.deep.equal(c.unread);
    });
  }

  it(`walks at most ${MAX_WALK} tasks looking for a cycle`, () => {
    const read: string[] = [];
    // A chain of 1000 pending tasks, each waiting for the next.
    const verdict = dependencyVerdict(task('me', { after: ['n0'] }), (id) => {
      read.push(id);
      const k = Number(id.slice(1));
      return view('waiting', [`n${k + 1}`]);
    });
    expect(verdict.kind).to.equal('waiting');
    expect(read.length).to.be.at.most(MAX_WALK + 2);
  });

  it('reads a document as a dependency: status (none = waiting), repeat, after; a deleted one is missing', () => {
    expect(dependencyView({ _id: 'x', worker: 'w', repeat: 'P1D', after: ['y', 3] })).to.deep.equal({ status: 'waiting', repeats: true, after: ['y'] });
    expect(dependencyView({ _id: 'x', status: 'done' })).to.deep.equal({ status: 'done', repeats: false, after: [] });
    expect(dependencyView({ _id: 'x', _deleted: true })).to.equal(null);
    expect(dependencyView(null)).to.equal(null);
  });
});

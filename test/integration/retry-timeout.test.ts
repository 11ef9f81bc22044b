/**
 * Retries and timeouts (issue 4, docs/spec.md §2): a failed run with retries left goes back to
 * `waiting` at finish + delay × backoff^n; a run past its timeout is aborted, counts as a
 * failure with E_TIMEOUT and follows the same retry policy.
 */
import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { iso, postTask, postTasks, readRecords, startWorker, useSuiteDb, waitFor, waitForDoc, waitForStatus } from '../helpers/index';

/** The worker-wide default timeout this file's config sets (`worker.timeout_ms`). */
const DEFAULT_TIMEOUT_MS = 1_500;

describe('retries and timeouts', function () {
  this.timeout(60_000);
  // A minimum below the 400 ms the backoff test starts from (the default is 1 s).
  const db = useSuiteDb({ config: { worker: { timeout_ms: DEFAULT_TIMEOUT_MS, min_repeat_ms: 100 } } });
  // One instance per test, stopped when the test ends.
  beforeEach(async () => {
    await startWorker(db, 'retrier');
  });

  it('retry dates follow delay × backoff^n after each failure, then error', async () => {
    const [id] = await postTasks(db, [
      { worker: 'retrier', date: iso(Date.now()), job: 'rejects', retry: { limit: 3, delay: 400, backoff: 2 } },
    ]);
    // After the n-th failure the task waits with retries = n and date = that run's finish + 400 × 2^(n-1).
    const gaps: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const waiting = await waitForDoc(db, id!, (doc) => doc.retries === n, 10_000, `retries to reach ${n}`);
      expect(['waiting', 'scheduled', 'running']).to.include(waiting.status);
      expect(waiting.error).to.include({ code: 'E_FIXTURE_REJECTS' });
      const gap = Date.parse(String(waiting.date)) - Date.parse(waiting.last_run!.finished_at);
      gaps.push(gap);
      expect(gap, `delay after failure ${n}`).to.equal(400 * 2 ** (n - 1));
    }
    const failed = await waitForStatus(db, id!, 'error', 10_000);
    expect(failed.retries).to.equal(3);
    expect(failed.executions).to.equal(4);
    expect(failed.history?.map((h) => h.status)).to.deep.equal(['error', 'error', 'error', 'error']);
    // Each retry started at its date, never before.
    const starts = failed.history!.map((h) => Date.parse(h.started_at)).reverse();
    const finishes = failed.history!.map((h) => Date.parse(h.finished_at)).reverse();
    for (let n = 1; n < starts.length; n++) expect(starts[n]! - finishes[n - 1]!).to.be.at.least(gaps[n - 1]!);
  });

  it('a job past its timeout is aborted, fails with E_TIMEOUT and is retried', async () => {
    const [id] = await postTasks(db, [
      { worker: 'retrier', date: iso(Date.now()), job: 'hangs', timeout: 300, retry: { limit: 1, delay: 200 } },
    ]);
    const firstFailure = await waitForDoc(db, id!, (doc) => doc.retries === 1, 10_000, 'the first timeout');
    expect(firstFailure.error?.code).to.equal('E_TIMEOUT');
    expect(firstFailure.error?.message).to.match(/timed out/);
    const failed = await waitForStatus(db, id!, 'error', 10_000);
    expect(failed.executions).to.equal(2);
    expect(failed.error?.code).to.equal('E_TIMEOUT');
    for (const run of failed.history!) {
      expect(run.duration_ms).to.be.at.least(300);
      expect(run.duration_ms).to.be.below(1_500);
    }
  });

  it('the default timeout from worker.timeout_ms applies to a task without one; a job that finishes in time succeeds', async () => {
    const [slow, quick] = await postTasks(db, [
      { worker: 'retrier', date: iso(Date.now()), job: { name: 'slow', arguments: [20_000] } },
      { worker: 'retrier', date: iso(Date.now()), job: { name: 'slow', arguments: [200] }, timeout: 5_000 },
    ]);
    const failed = await waitForStatus(db, slow!, 'error', 10_000);
    expect(failed.error?.code).to.equal('E_TIMEOUT');
    expect(failed.last_run!.duration_ms).to.be.at.least(DEFAULT_TIMEOUT_MS).and.below(DEFAULT_TIMEOUT_MS + 1_000);
    const done = await waitForStatus(db, quick!, 'done', 10_000);
    expect(done.result).to.deep.equal({ slept: 200 });
  });

  it('a cancel of a running task aborts its job: canceled, no retry', async () => {
    const [id] = await postTasks(db, [{ worker: 'retrier', date: iso(Date.now()), job: 'hangs', retry: { limit: 3, delay: 100 } }]);
    const running = await waitForStatus(db, id!, 'running');
    const put = await db.request('PUT', id!, { ...running, status: 'cancel' });
    expect(put.status).to.equal(201);
    const canceled = await waitForStatus(db, id!, 'canceled');
    expect(canceled.retries ?? 0).to.equal(0);
    expect(canceled.lease).to.equal(undefined);
    const after = (await db.request<TaskDoc>('GET', id!)).body;
    expect(after.status).to.equal('canceled');
  });
});

describe('no run again sooner than worker.min_repeat_ms (issue 19, row 3)', function () {
  this.timeout(60_000);
  const MIN_MS = 600;
  const db = useSuiteDb({ config: { worker: { min_repeat_ms: MIN_MS } } });
  beforeEach(async () => {
    await startWorker(db, 'eager');
  });

  /** Time from the end of each run to the start of the next, from the task's history (oldest first). */
  function gapsOf(doc: TaskDoc): number[] {
    const runs = [...(doc.history ?? [])].reverse();
    return runs.slice(1).map((entry, i) => Date.parse(entry.started_at) - Date.parse(runs[i]!.finished_at));
  }

  it('a webhook task failing at once with "retry": {"delay": 0} re-runs no sooner than the minimum', async () => {
    // The probe: before, it re-ran every 60-100 ms (202 runs in 27 s).
    const id = await postTask(db, { worker: 'eager', date: iso(Date.now()), job: { name: 'webhook', arguments: ['http://127.0.0.1:1/'] }, retry: { limit: 1_000_000, delay: 0 } });
    const doc = await waitForDoc(db, id, (d) => (d.history?.length ?? 0) >= 3, 20_000, 'three failed runs');
    const gaps = gapsOf(doc);
    expect(gaps.length).to.be.at.least(2);
    for (const gap of gaps) expect(gap, `gaps ${gaps.join(', ')} ms`).to.be.at.least(MIN_MS);
    expect(doc.error?.message).to.match(/webhook: POST http:\/\/127\.0\.0\.1:1\/ failed/);
  });

  for (const outcome of ['later', 'retry', 'release'] as const) {
    it(`a job asking ctx.${outcome}(0) three times runs again no sooner than the minimum each time`, async () => {
      const id = await postTask(db, { worker: 'eager', date: iso(Date.now()), job: 'steers', data: { outcome, delay: 0, times: 3 } });
      const done = await waitForStatus(db, id, 'done', 30_000);
      expect(done.result).to.deep.equal({ calls: 4 });
      const starts = await waitFor(async () => { const runs = readRecords().filter((r) => r.id === id); return runs.length === 4 && runs; }, { timeoutMs: 5000, what: 'four recorded calls' });
      const startGaps = starts.slice(1).map((run, i) => run.startedAt - starts[i]!.startedAt);
      for (const gap of startGaps) expect(gap, `starts ${startGaps.join(', ')} ms apart`).to.be.at.least(MIN_MS);
    });
  }
});

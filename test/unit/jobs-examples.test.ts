import { expect } from 'chai';
import * as path from 'node:path';
import { loadJobs, type JobRegistry } from '../../src/jobs/loader';
import { runJob } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';

/** The jobs folder that ships with After. */
const EXAMPLE_JOBS = path.resolve(__dirname, '../../../jobs');

describe('example jobs shipped in jobs/', () => {
  let jobs: JobRegistry;
  before(async () => {
    jobs = await loadJobs(EXAMPLE_JOBS);
  });

  function run(doc: Omit<TaskDoc, '_id'>): Promise<RunOutcome> {
    const job = doc.job as { name: string } | string;
    const fn = jobs.resolve(typeof job === 'string' ? job : job.name);
    expect(fn, 'job resolves').to.be.a('function');
    return runJob(fn!, { _id: 'example', ...doc }, { signal: new AbortController().signal, log: silentLogger() });
  }

  it('load without a problem', () => {
    expect(jobs.problems).to.deep.equal([]);
    expect(jobs.names()).to.include.members(['start_replication', 'send_report', 'always_fails', 'count_to_ten']);
  });

  it("runs the README's first example, start_replication, without any other service", async () => {
    const outcome = await run({ worker: 'manobi', date: '2013-01-12', job: { name: 'start_replication', arguments: [2, 3, 'test'] } });
    expect(outcome.kind).to.equal('success');
    expect((outcome as { result: Record<string, unknown> }).result).to.deep.include({
      replication: { source: 2, target: 3, label: 'test' },
      replicated: false,
    });
  });

  it('fails start_replication with arguments it cannot use', async () => {
    for (const args of [[], [2, 2, 'same'], [2, 3, 42], [-1, 3]]) {
      const outcome = await run({ worker: 'manobi', date: '2013-01-12', job: { name: 'start_replication', arguments: args } });
      expect(outcome.kind, JSON.stringify(args)).to.equal('failure');
    }
  });

  it('builds a report with send_report, and refuses a bad recipient', async () => {
    const doc = { worker: 'reports', date: '2030-01-08T08:00:00Z', job: { name: 'send_report', arguments: ['ops@example.com', 'weekly'] } };
    const outcome = await run(doc);
    expect(outcome.kind).to.equal('success');
    expect((outcome as { result: Record<string, unknown> }).result).to.include({ to: 'ops@example.com', sent: false });
    expect(((await run({ ...doc, job: { name: 'send_report', arguments: ['nobody'] } })) as { kind: string }).kind).to.equal(
      'failure',
    );
  });

  it('fails always_fails with its code, in the short job form', async () => {
    const outcome = await run({ worker: 'manobi', date: '2013-01-12', job: 'always_fails' });
    expect(outcome).to.have.property('kind', 'failure');
    expect((outcome as { error: { code?: string } }).error.code).to.equal('E_ALWAYS_FAILS');
  });

  it('count_to_ten asks to run again, `every` apart, until its tenth run, which ends it', async () => {
    const doc = { worker: 'demo', date: '2030-01-01T09:00:00Z', job: { name: 'count_to_ten', arguments: ['30s'] } };
    expect(await run(doc)).to.deep.equal({ kind: 'later', result: { counted: 1 }, when: { delayMs: 30_000 } });
    expect(await run({ ...doc, executions: 8 })).to.deep.equal({ kind: 'later', result: { counted: 9 }, when: { delayMs: 30_000 } });
    expect(await run({ ...doc, executions: 9 })).to.deep.equal({ kind: 'success', result: { counted: 10, finished: true } });
    expect(await run({ ...doc, job: { name: 'count_to_ten', arguments: [] } })).to.deep.include({ kind: 'later', when: { delayMs: 60_000 } });
  });
});

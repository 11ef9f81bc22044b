/** `after import`: a crontab and an NDJSON file become task documents, once. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskDoc } from '../../src/types';
import { runCli, useSuiteDb } from '../helpers/index';

const CRONTAB = `# m h dom mon dow command
SHELL=/bin/bash
MAILTO=ops@example.com
*/5 * * * * /usr/bin/env echo hello
0 9 * * 1-5 /usr/local/bin/report --daily "two words"
@daily /usr/bin/backup --all
@reboot /usr/bin/start-everything
0 1 * * * cd /tmp && ls | wc -l
CRON_TZ=Europe/Paris
30 2 * * * /usr/bin/nightly
61 * * * * /bin/true
`;

const NDJSON = [
  '{"worker":"importer","date":"2040-01-01T00:00:00Z","job":"succeeds"}',
  '{"_id":"chosen-id","_rev":"3-abc","worker":"importer","date":"2040-01-02T00:00:00Z","job":{"name":"succeeds","arguments":[1]}}',
  '{"date":"2040-01-03T00:00:00Z","job":"succeeds","data":{"n":3}}',
  '{"worker":"importer","date":"not a date","job":"succeeds"}',
  'not json',
  '',
].join('\n');

interface Summary {
  created: Array<{ line: number; id: string }>;
  skipped: Array<{ line: number; id: string; reason: string }>;
  rejected: Array<{ line: number; reason: string }>;
}

describe('after import', function () {
  this.timeout(60_000);
  const db = useSuiteDb();
  let crontab: string;
  let ndjson: string;

  before(() => {
    crontab = path.join(db.root, 'crontab');
    ndjson = path.join(db.root, 'tasks.ndjson');
    fs.writeFileSync(crontab, CRONTAB);
    fs.writeFileSync(ndjson, NDJSON);
  });

  async function importJson(args: string[]): Promise<Summary> {
    const result = await runCli(['import', ...args, '--json'], { env: db.env });
    expect(result.code, result.stderr).to.equal(0);
    return JSON.parse(result.stdout) as Summary;
  }

  async function allTasks(): Promise<TaskDoc[]> {
    const res = await db.request<{ rows: Array<{ doc: TaskDoc }> }>('GET', '_all_docs?include_docs=true');
    return res.body.rows.map((row) => row.doc).filter((doc) => !doc._id.startsWith('_design/'));
  }

  it('turns crontab lines into exec tasks with cron repeats, rejecting what it cannot run without a shell', async () => {
    const summary = await importJson([crontab, '--worker', 'nightly']);
    expect(summary.created.map((c) => c.line)).to.deep.equal([4, 5, 6, 10]);
    expect(summary.rejected.map((r) => r.line)).to.deep.equal([7, 8, 11]);
    expect(summary.rejected.find((r) => r.line === 8)!.reason).to.contain('needs a shell').and.contain('--shell');

    const tasks = await allTasks();
    const byLine = (line: number): TaskDoc => tasks.find((t) => (t.imported as { line: number }).line === line)!;
    expect(byLine(5)).to.deep.include({ worker: 'nightly', status: 'waiting' });
    expect(byLine(5).job).to.deep.equal({ name: 'exec', arguments: ['/usr/local/bin/report', '--daily', 'two words'] });
    expect(byLine(5).repeat).to.deep.equal({ cron: '0 9 * * 1-5', timezone: 'UTC' });
    expect(byLine(6).repeat).to.deep.equal({ cron: '0 0 * * *', timezone: 'UTC' });
    expect(byLine(10).repeat).to.deep.equal({ cron: '30 2 * * *', timezone: 'Europe/Paris' });
    const date = Date.parse(String(byLine(4).date));
    expect(date).to.be.greaterThan(Date.now()).and.at.most(Date.now() + 5 * 60_000);
    expect(new Date(date).getUTCMinutes() % 5).to.equal(0);
  });

  it('creates nothing on a second import of the same crontab; --shell adds only the shell line', async () => {
    const again = await importJson([crontab, '--worker', 'nightly']);
    expect(again.created).to.have.length(0);
    expect(again.skipped).to.have.length(4);
    const before = (await allTasks()).length;

    const withShell = await importJson([crontab, '--worker', 'nightly', '--shell']);
    expect(withShell.created.map((c) => c.line)).to.deep.equal([8]);
    const shellTask = (await allTasks()).find((t) => t._id === withShell.created[0]!.id)!;
    expect(shellTask.job).to.deep.equal({ name: 'exec', arguments: ['/bin/sh', '-c', 'cd /tmp && ls | wc -l'] });
    expect((await allTasks()).length).to.equal(before + 1);

    // The worker needs exec turned on to run them: the import says so.
    const plain = await runCli(['import', crontab, '--worker', 'nightly'], { env: db.env });
    expect(plain.code).to.equal(0);
    expect(plain.stdout).to.match(/^created 0, skipped/);
    expect(plain.stderr).to.match(/exec is off by default/);
  });

  it('imports NDJSON tasks with their ids (or stable ones), and none again the second time', async () => {
    const first = await runCli(['import', ndjson, '--worker', 'importer'], { env: db.env });
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.match(/^created 3, skipped 0, rejected 2$/m);
    expect(first.stdout).to.match(/rejected line 4: date: .*not a date/);
    expect(first.stdout).to.match(/rejected line 5: not JSON/);

    const chosen = (await db.request<TaskDoc>('GET', 'chosen-id')).body;
    expect(chosen).to.deep.include({ worker: 'importer', status: 'waiting', date: '2040-01-02T00:00:00Z' });
    expect(chosen._rev).to.match(/^1-/);
    const filledIn = (await allTasks()).find((t) => (t.data as { n?: number } | undefined)?.n === 3)!;
    expect(filledIn.worker).to.equal('importer');

    const before = (await allTasks()).length;
    const second = await runCli(['import', ndjson, '--worker', 'importer'], { env: db.env });
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.match(/^created 0, skipped 3, rejected 2$/m);
    expect((await allTasks()).length).to.equal(before);
  });

  it('needs --worker for a crontab and names an unreadable file, in one line', async () => {
    const noWorker = await runCli(['import', crontab], { env: db.env });
    expect(noWorker.code).to.equal(1);
    expect(noWorker.stderr.trim()).to.match(/^after: importing a crontab needs --worker/);
    const missing = await runCli(['import', path.join(db.root, 'nope')], { env: db.env });
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.match(/^after: cannot read .*nope: ENOENT$/);
  });
});

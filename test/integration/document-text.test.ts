/**
 * Task documents written to attack whoever reads them: ids, workers and job names holding ESC
 * sequences (screen clear, OSC 52 clipboard write), 8-bit CSI and newlines. What the operator
 * sees in `after task list`, `after status`, the worker's console and its log file must hold
 * none of those characters raw, and no line may be forged.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { workerLogFile } from '../../src/log';
import { runCli, startWorker, useSuiteDb, waitForStatus } from '../helpers/index';

/** C0 controls except the newline that ends each line, DEL, C1, line separators, bidi controls. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const FORGED = 'info task payroll done';
/** A line that starts the way the logger starts one, then the forged text. */
const FORGED_LINE = /^(\S+ )?info task payroll done/m;

describe('text from task documents, printed and logged', function () {
  this.timeout(60_000);
  const db = useSuiteDb();

  const clearAndClipboard = '\u001b[2J\u001b[H\u001b]52;c;cHduZWQ=\u0007';
  const runsId = `runs${clearAndClipboard}\n${FORGED}`;
  const failedId = `failed\u009b2J\r\n${FORGED}`;
  const badJobId = `badjob\u001bc\n${FORGED}`;

  async function put(id: string, doc: Record<string, unknown>): Promise<void> {
    const res = await db.request('PUT', encodeURIComponent(id), doc);
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
  }

  it('runs the tasks, and the worker console and log file show their ids escaped on one line each', async () => {
    await put(runsId, { worker: 'doc-text', date: new Date().toISOString(), job: 'succeeds' });
    await put(badJobId, { worker: 'doc-text', date: new Date().toISOString(), job: 'no-such-job' });
    // The database's validate_doc_update refuses control characters in `worker` and `job` of a
    // task to run, but not in a finished one (nor anywhere before `after init`).
    await put(failedId, {
      worker: `far\u001b[2J\n${FORGED}`,
      status: 'error',
      date: '2040-01-01T00:00:00Z',
      job: `j\u001b]0;title\u0007`,
      error: { message: `boom\u001b[2J\n${FORGED}` },
    });

    const { child: worker } = await startWorker(db, 'doc-text');
    await waitForStatus(db, runsId, 'done', 20_000);
    await waitForStatus(db, badJobId, 'error', 20_000);
    // The log lines of the last write are written once the write is done.
    await worker.waitForOutput(/task runs.*done/, 10_000);
    worker.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);

    const console = worker.stdout + worker.stderr;
    const logged = fs.readFileSync(workerLogFile(path.join(db.root, 'logs'), 'doc-text'), 'utf8');
    for (const [where, text] of [['console', console], ['log file', logged]] as const) {
      expect(text, where).not.to.match(RAW_CONTROL);
      expect(text, where).not.to.match(FORGED_LINE);
      expect(text, where).to.contain(`runs\\x1b[2J\\x1b[H\\x1b]52;c;cHduZWQ=\\x07\\n${FORGED}`);
      expect(text, where).to.contain(`badjob\\x1bc\\n${FORGED}`);
    }
  });

  it('after task list prints one row per task with no raw control character', async () => {
    const list = await runCli(['task', 'list'], { env: db.env });
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).not.to.match(RAW_CONTROL);
    expect(list.stdout).not.to.match(FORGED_LINE);
    expect(list.stdout.trimEnd().split('\n'), 'a header and three tasks').to.have.length(4);
    expect(list.stdout).to.contain(`failed\\x9b2J\\r\\n${FORGED}`);
    expect(list.stdout).to.contain(`far\\x1b[2J\\n${FORGED}`);

    const json = await runCli(['task', 'list', '--json'], { env: db.env });
    expect(json.stdout).not.to.match(RAW_CONTROL);
    const ids = (JSON.parse(json.stdout) as Array<{ _id: string }>).map((t) => t._id).sort();
    expect(ids, '--json keeps the exact ids').to.deep.equal([badJobId, runsId, failedId].sort());
  });

  it('after status and after task get print the worker names escaped', async () => {
    const status = await runCli(['status'], { env: db.env });
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).not.to.match(RAW_CONTROL);
    expect(status.stdout).not.to.match(FORGED_LINE);
    expect(status.stdout).to.contain(`far\\x1b[2J\\n${FORGED}`);

    const get = await runCli(['task', 'get', failedId], { env: db.env });
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout).not.to.match(RAW_CONTROL);
    expect(JSON.parse(get.stdout)._id).to.equal(failedId);
  });

  it('an error naming such an id is one line with no raw control character', async () => {
    const missing = await runCli(['task', 'cancel', `gone\u001b[2J\n${FORGED}`], { env: db.env });
    expect(missing.code).to.equal(1);
    expect(missing.stderr).not.to.match(RAW_CONTROL);
    expect(missing.stderr.trimEnd().split('\n')).to.have.length(1);
  });
});

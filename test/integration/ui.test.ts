/**
 * The dashboard as an operator meets it: a real headless Chromium (Debian's `chromium`, which
 * `make test` installs when missing) driven by playwright-core, tasks posted over HTTP like curl
 * does, a worker started with the CLI, and what the page and the task documents show.
 *
 * Set AFTER_SCREENSHOTS=<dir> to keep screenshots of the pages (docs/img/ holds the README's).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { silentLogger } from '../../src/log';
import type { Connection } from '../../src/store/connection';
import type { TaskDoc } from '../../src/types';
import { startDashboard, type Dashboard } from '../../src/ui/server';
import { getTask, postTask, startCli, startWorker, useSuiteDb, waitFor, waitForStatus, type ChildHandle } from '../helpers/index';
import { databaseRequest } from '../helpers/db';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = process.env.AFTER_SCREENSHOTS;
// What the functions passed to page.waitForFunction and $$eval see: they run in the page.
declare const document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null } | null };
type HTMLElement = { dataset: Record<string, string | undefined> };

describe('dashboard (after ui) in headless Chromium', function () {
  this.timeout(90_000);
  let conn: Connection;
  let dashboard: Dashboard;
  let profileDir: string;
  let browser: BrowserContext;
  let page: Page;

  before(function () {
    if (!fs.existsSync(CHROMIUM)) {
      // `make test` installs it (apt-get install chromium); only a machine where that failed gets here.
      console.log(`    note: ${CHROMIUM} is missing (apt-get install chromium); the dashboard browser tests are skipped`);
      this.skip();
    }
  });
  // Before the database's own `after`: the dashboard follows the database until it is closed.
  after(async () => {
    await browser?.close();
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
    await dashboard?.close();
    conn?.close();
  });
  const db = useSuiteDb({ config: { worker: { heartbeat_ms: 1000 }, stats: { flush_ms: 1000 } } });
  before(async () => {
    conn = db.connect();
    dashboard = await startDashboard({ conn, config: db.config(), port: 0, heartbeatMs: 1000, log: silentLogger() });
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  const post = (task: Record<string, unknown>): Promise<string> => postTask(db, task);

  function controlRequest<T = unknown>(method: string, docPath: string): Promise<{ status: number; body: T }> {
    return databaseRequest(db.url, `${db.dbName}_control`)<T>(method, docPath);
  }

  async function openOverview(): Promise<void> {
    await page.goto(dashboard.url);
    await page.waitForSelector('#live.on');
    // Gone after a reload: proves later updates came over the live feed.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));
  }

  async function stillSamePage(): Promise<boolean> {
    return page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce === true);
  }

  async function screenshot(name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
  }

  it('shows a task posted over HTTP without a reload, and its status turning done live', async () => {
    await startWorker(db, 'ui-live');
    await page.goto(`${dashboard.url}#/instances`);
    await page.waitForSelector('#instance-list tr[data-instance] >> text=ui-live');
    await openOverview();

    const id = await post({ worker: 'ui-live', date: new Date(Date.now() + 2000).toISOString(), job: { name: 'slow', arguments: [500] } });
    const row = `#activity tr[data-task-id="${id}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    expect(await page.textContent(row)).to.contain('ui-live').and.contain('slow');
    await page.waitForSelector(`${row}[data-status="done"]`, { timeout: 20_000 });

    expect((await waitForStatus(db, id, 'done')).status).to.equal('done');
    expect(await stillSamePage(), 'the page was reloaded').to.equal(true);
    await page.waitForSelector('#counts tr[data-worker="ui-live"] td[data-status="done"] >> text=1');
    await screenshot('dashboard-live.png');
  });

  it('cancels a task from its page: the document gets status cancel', async () => {
    const id = await post({ worker: 'ui-nobody', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    await page.goto(`${dashboard.url}#/task/${encodeURIComponent(id)}`);
    await page.waitForSelector('#task-status.waiting');
    await page.click('#action-cancel');

    const canceled = await waitForStatus(db, id, 'cancel');
    expect(canceled.date).to.equal('2040-01-01T00:00:00Z');
    await page.waitForSelector('#task-status.cancel');
    expect(await page.isDisabled('#action-cancel')).to.equal(true);
  });

  it('shows a failed task with its error, and retries it from its page', async () => {
    await startWorker(db, 'ui-fails');
    await openOverview();
    // One retry at once: the task fails twice before it ends in `error`.
    const id = await post({ worker: 'ui-fails', date: new Date().toISOString(), job: 'throws', retry: { limit: 1, delay: 0 } });
    const failed = await waitForStatus(db, id, 'error');
    expect(failed.executions).to.equal(2);

    const failure = `#failures tr[data-task-id="${id}"]`;
    await page.waitForSelector(failure, { timeout: 10_000 });
    expect(await page.textContent(failure)).to.contain('throws: this job always throws');
    expect(await stillSamePage(), 'the page was reloaded').to.equal(true);

    await page.click(`${failure} a`);
    await page.waitForSelector('#task-status.error');
    expect(await page.textContent('#task-error')).to.contain('throws: this job always throws');
    expect(await page.textContent('#history')).to.contain('throws: this job always throws');
    await screenshot('dashboard-failed-task.png');

    await page.click('#action-retry');
    // The worker runs it again with its retry given back: two more executions, failing the same way.
    const rerun = await waitFor(
      async () => {
        const res = await db.request<TaskDoc>('GET', encodeURIComponent(id));
        return res.body.executions! >= 3 && res.body.status === 'error' ? res.body : undefined;
      },
      { timeoutMs: 15_000, what: `task ${id} to fail again after retry` },
    );
    expect(rerun.executions, 'a retry from the page gives the task its retries back').to.equal(4);
    expect(rerun.retries).to.equal(1);
    expect(rerun.history).to.have.length(4);
  });

  it('pauses and resumes a worker name from the overview: its pause document, and no run meanwhile', async () => {
    const { child: worker } = await startWorker(db, 'ui-pause');
    await openOverview();
    const row = '#workers tr[data-worker="ui-pause"]';
    await page.waitForSelector(`${row}[data-paused="false"]`, { timeout: 10_000 });
    await page.click(`${row} button[data-worker-action="pause"]`);
    await page.waitForSelector(`${row}[data-paused="true"]`, { timeout: 10_000 });
    expect(await page.textContent('#worker-result')).to.contain('worker ui-pause paused');
    const pauseDoc = await controlRequest<{ worker?: string; paused_by?: string }>('GET', encodeURIComponent('pause:ui-pause'));
    expect(pauseDoc.body).to.include({ worker: 'ui-pause', paused_by: 'dashboard' });
    await worker.waitForOutput(/worker ui-pause paused/, 5_000);

    const id = await post({ worker: 'ui-pause', date: new Date().toISOString(), job: 'succeeds', status: 'waiting' });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await db.request<TaskDoc>('GET', encodeURIComponent(id))).body.status, 'no run while paused').to.equal('waiting');

    await page.click(`${row} button[data-worker-action="resume"]`);
    await page.waitForSelector(`${row}[data-paused="false"]`, { timeout: 10_000 });
    await waitForStatus(db, id, 'done', 10_000);
    expect((await controlRequest('GET', encodeURIComponent('pause:ui-pause'))).status).to.equal(404);
  });

  it('Run now on a repeating task runs it once and keeps its next date; Pause and Resume on its page', async () => {
    await startWorker(db, 'ui-run');
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    const id = await post({ worker: 'ui-run', date: tomorrow, job: 'succeeds', repeat: { days: 1 }, status: 'waiting' });
    await page.goto(`${dashboard.url}#/task/${encodeURIComponent(id)}`);
    await page.waitForSelector('#task-status.waiting');
    expect(await page.isDisabled('#action-resume'), 'resume is for paused tasks').to.equal(true);
    await page.click('#action-run-now');
    const ran = await waitFor(
      async () => {
        const doc = (await db.request<TaskDoc>('GET', encodeURIComponent(id))).body;
        return doc.executions === 1 && doc.run_now === undefined ? doc : undefined;
      },
      { timeoutMs: 15_000, what: `task ${id} to run now` },
    );
    expect(ran.date, 'the series keeps its next date').to.equal(tomorrow);

    await page.click('#action-pause');
    await waitForStatus(db, id, 'paused');
    await page.waitForSelector('#task-status.paused');
    expect(await page.isDisabled('#action-run-now'), 'a paused task does not run now').to.equal(true);
    await page.click('#action-resume');
    const resumed = await waitForStatus(db, id, ['waiting', 'scheduled']);
    expect(resumed.date).to.equal(tomorrow);
  });

  it('moves a task to another date from its page, and refuses what the task cannot do', async () => {
    const id = await post({ worker: 'ui-nobody', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    await page.goto(`${dashboard.url}#/task/${encodeURIComponent(id)}`);
    await page.waitForSelector('#task-status.waiting');
    expect(await page.isDisabled('#action-retry'), 'retry is for failed tasks').to.equal(true);
    await page.fill('#reschedule-date', '2041-02-03T04:05:06');
    await page.click('#action-reschedule');

    const moved = await waitForStatus(db, id, 'reschedule');
    expect(moved.date).to.equal('2041-02-03T04:05:06.000Z');
  });

  it('shows what a task waits for: each task it names with its status, live, and a missing one', async () => {
    const importId = await post({ worker: 'ui-nobody', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    const reportId = await post({ worker: 'ui-nobody', date: '2040-01-01T00:00:00Z', job: 'succeeds', after: [importId, 'ui-no-such-task'] });
    await page.goto(`${dashboard.url}#/task/${encodeURIComponent(reportId)}`);
    await page.waitForSelector(`#after tr[data-task-id="${importId}"] .status.waiting`);
    await page.waitForSelector('#after tr[data-task-id="ui-no-such-task"] .status.missing');
    expect(await page.isVisible('#after-section')).to.equal(true);
    await screenshot('dashboard-after.png');
    // The dependency finishes: the page follows without a reload.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));
    const current = (await db.request<TaskDoc>('GET', encodeURIComponent(importId))).body;
    await db.request('PUT', encodeURIComponent(importId), { ...current, status: 'done' });
    await page.waitForSelector(`#after tr[data-task-id="${importId}"] .status.done`);
    expect(await stillSamePage()).to.equal(true);
    // A task that waits for nothing has no such section.
    await page.goto(`${dashboard.url}#/task/${encodeURIComponent(importId)}`);
    await page.waitForSelector('#task-status.done');
    expect(await page.isVisible('#after-section')).to.equal(false);
  });

  /** The rows of the task list, as ids in the order shown. */
  async function listedIds(): Promise<string[]> {
    return page.$$eval('#task-list tbody tr[data-task-id]', (rows) => rows.map((row) => (row as HTMLElement).dataset.taskId!));
  }

  it('lists the tasks of a status by date, a page at a time (keyset), filtered by worker, with why each has not run', async () => {
    const ids: string[] = [];
    for (let i = 1; i <= 7; i++) ids.push(await post({ _id: `ui-list-${i}`, worker: 'ui-list', date: `2040-01-0${i}T00:00:00Z`, job: 'succeeds' }));
    await post({ worker: 'ui-list-other', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    await page.goto(`${dashboard.url}#/tasks?status=waiting&worker=ui-list&limit=3`);
    await page.waitForFunction(() => document.querySelectorAll('#task-list tbody tr[data-task-id]').length === 3);
    expect(await listedIds()).to.deep.equal(ids.slice(0, 3));
    expect(await page.textContent('#task-list tbody tr[data-task-id="ui-list-1"] [data-why]')).to.contain('no live instance of worker ui-list');
    await screenshot('dashboard-list.png');

    await page.click('#next-page');
    await page.waitForFunction(() => document.querySelector('#task-list tbody tr[data-task-id]')?.getAttribute('data-task-id') === 'ui-list-4');
    expect(await listedIds()).to.deep.equal(ids.slice(3, 6));
    await page.keyboard.press('n');
    await page.waitForFunction(() => document.querySelector('#task-list tbody tr[data-task-id]')?.getAttribute('data-task-id') === 'ui-list-7');
    expect(await listedIds()).to.deep.equal(['ui-list-7']);
    expect(await page.isDisabled('#next-page'), 'the last page has no next').to.equal(true);

    await page.goto(`${dashboard.url}#/tasks?status=waiting&worker=ui-list&limit=3&order=desc`);
    await page.waitForFunction(() => document.querySelectorAll('#task-list tbody tr[data-task-id]').length === 3);
    expect(await listedIds()).to.deep.equal(['ui-list-7', 'ui-list-6', 'ui-list-5']);
  });

  it('finds a task by id prefix and tasks by job name, from the search box (keyboard: /)', async () => {
    await post({ _id: 'ui-find-alpha-1', worker: 'ui-find', date: '2040-01-01T00:00:00Z', job: 'records' });
    await post({ _id: 'ui-find-alpha-2', worker: 'ui-find', date: '2040-01-02T00:00:00Z', job: 'records' });
    await post({ _id: 'ui-find-beta', worker: 'ui-find', date: '2040-01-01T00:00:00Z', job: 'succeeds' });
    await page.goto(dashboard.url);
    await page.waitForSelector('#live.on');
    await page.keyboard.press('/');
    await page.keyboard.type('ui-find-alpha');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#search-tasks tbody tr[data-task-id]').length === 2);
    expect(await page.$$eval('#search-tasks tbody tr[data-task-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.taskId))).to.deep.equal(['ui-find-alpha-1', 'ui-find-alpha-2']);

    await page.fill('#search', 'recor');
    await page.press('#search', 'Enter');
    await page.waitForSelector('#search-jobs a >> text=records');
    await page.click('#search-jobs a >> text=records');
    await page.waitForFunction(() => document.querySelectorAll('#task-list tbody tr[data-task-id]').length === 2);
    expect(await listedIds()).to.deep.equal(['ui-find-alpha-1', 'ui-find-alpha-2']);
  });

  it('cancels the selected tasks in bulk and counts what was done and what was skipped, and why', async () => {
    for (let i = 1; i <= 3; i++) await post({ _id: `ui-bulk-${i}`, worker: 'ui-bulk', date: `2040-02-0${i}T00:00:00Z`, job: 'succeeds' });
    await page.goto(`${dashboard.url}#/tasks?status=waiting&worker=ui-bulk`);
    await page.waitForFunction(() => document.querySelectorAll('#task-list tbody tr[data-task-id]').length === 3);
    await page.check('#select-all');
    expect(await page.textContent('#selected-count')).to.equal('3 selected');
    // Meanwhile someone else finishes one of them: the bulk cancel must not overwrite it.
    const meanwhile = (await db.request<TaskDoc>('GET', 'ui-bulk-2')).body;
    await db.request('PUT', 'ui-bulk-2', { ...meanwhile, status: 'done' });
    await page.click('[data-bulk="cancel"]');
    await page.waitForSelector('#bulk-result[data-done]');
    expect(await page.textContent('#bulk-result')).to.contain('cancel: 2 done, 1 skipped (1 is done)');
    expect((await getTask(db, 'ui-bulk-1')).status).to.equal('cancel');
    expect((await getTask(db, 'ui-bulk-2')).status, 'the finished task was left as it was').to.equal('done');
    expect((await getTask(db, 'ui-bulk-3')).status).to.equal('cancel');
  });

  it('retries every failed task a list matches in bulk: each runs again', async () => {
    await startWorker(db, 'ui-bulk-retry');
    const ids = await Promise.all([1, 2, 3].map((i) => post({ _id: `ui-retry-${i}`, worker: 'ui-bulk-retry', date: new Date().toISOString(), job: 'throws' })));
    await Promise.all(ids.map((id) => waitForStatus(db, id, 'error')));
    await page.goto(`${dashboard.url}#/tasks?status=error&worker=ui-bulk-retry`);
    await page.waitForFunction(() => document.querySelectorAll('#task-list tbody tr[data-task-id]').length === 3);
    await page.selectOption('#bulk-scope', 'all');
    await page.click('[data-bulk="retry"]');
    await page.waitForSelector('#bulk-result[data-done]');
    expect(await page.textContent('#bulk-result')).to.contain('retry: 3 done, 0 skipped');
    for (const id of ids) {
      await waitFor(async () => ((await getTask(db, id)).executions === 2 ? true : undefined), { timeoutMs: 15_000, what: `task ${id} to run again` });
    }
  });

  it("draws the runs chart from the figures every instance records, and tells a task's story as a timeline", async () => {
    await startWorker(db, 'ui-chart');
    const repeating = await post({ _id: 'ui-story', worker: 'ui-chart', date: new Date().toISOString(), job: 'succeeds', repeat: { seconds: 1, limit: 3 } });
    await post({ _id: 'ui-story-after', worker: 'ui-nobody', date: '2040-01-01T00:00:00Z', job: 'succeeds', after: [repeating] });
    await post({ worker: 'ui-chart', date: new Date().toISOString(), job: 'throws' });
    await waitForStatus(db, repeating, 'done', 20_000);

    await page.goto(dashboard.url);
    await page.selectOption('#chart-worker', 'ui-chart');
    // The instance writes its figures every second here (stats.flush_ms); a minute by default.
    await page.waitForFunction(() => /^3 done, 1 failed/.test(document.querySelector('#chart-total')?.textContent ?? ''), undefined, { timeout: 20_000 });
    expect(Number(await page.getAttribute('#chart-runs', 'data-points'))).to.be.above(0);
    expect(await page.$$('#chart-runs canvas')).to.have.length.above(0);
    await page.selectOption('#chart-worker', '');
    await page.waitForFunction(() => /done/.test(document.querySelector('#chart-total')?.textContent ?? ''));
    await screenshot('dashboard-overview.png');

    await page.goto(`${dashboard.url}#/task/${repeating}`);
    await page.waitForFunction(() => document.querySelectorAll('#timeline .run').length === 3);
    expect(await page.$$eval('#timeline .run', (runs) => runs.map((r) => (r as HTMLElement).dataset.runStatus))).to.deep.equal(['done', 'done', 'done']);
    await page.waitForSelector('#waited-by tr[data-task-id="ui-story-after"]');
    expect(await page.textContent('#next-summary')).to.contain('every 1 second');
    await screenshot('dashboard-task.png');
  });
});

describe('after ui (the command)', function () {
  this.timeout(60_000);
  const db = useSuiteDb();
  /** The `after ui` of the current test (startUi), stopped when the test ends. */
  let ui: ChildHandle | undefined;

  interface Answer {
    status: number;
    text: string;
    body: { error?: string; rows?: unknown; status?: string; message?: string };
  }

  /**
   * A request with the headers exactly as given, `Host` included (fetch would set its own):
   * what a rebinding page, a script or a webhook sends.
   */
  function send(url: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: target.hostname, port: target.port, method: options.method ?? 'GET', path: options.path, headers: { host: target.host, ...options.headers } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            let body: Answer['body'] = {};
            try {
              body = JSON.parse(text) as Answer['body'];
            } catch {
              // the page, not JSON
            }
            resolve({ status: res.statusCode ?? 0, text, body });
          });
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  }

  async function startUi(args: string[] = []): Promise<{ url: string; origin: string; token: string }> {
    ui = startCli(['ui', '--port', '0', ...args], { env: db.env });
    const [, url] = await ui.waitForOutput(/dashboard at (http:\/\/[^/\s]+\/)/, 20_000);
    const page = await send(url!, { path: '/' });
    expect(page.status).to.equal(200);
    const token = /<meta name="after-token" content="([^"]+)">/.exec(page.text)?.[1];
    expect(token, 'the page carries its action token').to.be.a('string').with.length.above(20);
    return { url: url!, origin: new URL(url!).origin, token: token! };
  }

  /** A task nobody runs. */
  const postWaitingTask = (): Promise<string> => postTask(db, { worker: 'w', date: '2040-01-01', job: 'succeeds', status: 'waiting' });
  const statusOf = async (id: string): Promise<unknown> => (await getTask(db, id)).status;

  it('serves the page on 127.0.0.1 and never shows a credential', async () => {
    const { url } = await startUi();
    expect(new URL(url).hostname).to.equal('127.0.0.1');
    const page = await fetch(url);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('After dashboard');

    const overviewText = await (await fetch(`${url}api/overview`)).text();
    const overview = JSON.parse(overviewText) as { database: string };
    expect(overview.database).to.contain(db.dbName);
    const password = new URL(db.url).password;
    if (password) {
      expect(overviewText).to.not.contain(password);
      expect(ui!.stdout + ui!.stderr).to.not.contain(password);
    }
  });

  it('acts only for its own page: same Origin, the page token, a JSON body', async () => {
    const { url, origin, token } = await startUi();
    const id = await postWaitingTask();
    const action = (headers: Record<string, string>, body = '{"action":"cancel"}') =>
      send(url, { method: 'POST', path: `/api/tasks/${encodeURIComponent(id)}/actions`, headers, body });
    const json = { 'content-type': 'application/json' };

    const refusals: Array<[string, Record<string, string>, number, string]> = [
      ['no Origin (a script, a webhook task)', { ...json, 'x-after-token': token }, 403, 'E_ORIGIN'],
      ['another origin', { ...json, origin: 'http://evil.example', 'x-after-token': token }, 403, 'E_ORIGIN'],
      ['Origin null (a sandboxed frame)', { ...json, origin: 'null', 'x-after-token': token }, 403, 'E_ORIGIN'],
      ['no token (a cross-site form or fetch)', { ...json, origin }, 403, 'E_TOKEN'],
      ['a wrong token', { ...json, origin, 'x-after-token': `${token.slice(1)}x` }, 403, 'E_TOKEN'],
      ['a form post', { 'content-type': 'text/plain', origin, 'x-after-token': token }, 400, 'E_USAGE'],
    ];
    for (const [what, headers, status, code] of refusals) {
      const res = await action(headers);
      expect(res.status, what).to.equal(status);
      expect(res.body.error, what).to.equal(code);
    }
    expect(await statusOf(id), 'nothing was written').to.equal('waiting');

    expect((await action({ ...json, origin, 'x-after-token': token }, '{"action":"explode"}')).status).to.equal(400);
    const ok = await action({ ...json, origin, 'x-after-token': token });
    expect(ok.status).to.equal(200);
    expect(await statusOf(id)).to.equal('cancel');
    const again = await action({ ...json, origin, 'x-after-token': token });
    expect(again.status, 'cancel of a task already canceling').to.equal(409);
  });

  it('pauses and resumes a worker name only for its own page, and shows it in the overview', async () => {
    const { url, origin, token } = await startUi();
    const act = (headers: Record<string, string>, action = 'pause', worker = 'payroll') =>
      send(url, { method: 'POST', path: `/api/workers/${encodeURIComponent(worker)}/actions`, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ action }) });
    expect((await act({ 'x-after-token': token })).body.error, 'no Origin').to.equal('E_ORIGIN');
    expect((await act({ origin })).body.error, 'no token').to.equal('E_TOKEN');
    const control = databaseRequest(db.url, `${db.dbName}_control`);
    expect((await control('GET', encodeURIComponent('pause:payroll'))).status, 'nothing written').to.equal(404);

    const paused = await act({ origin, 'x-after-token': token });
    expect(paused.status).to.equal(200);
    expect(paused.body).to.include({ worker: 'payroll', paused: true, changed: true, hasTasks: false });
    expect((await control('GET', encodeURIComponent('pause:payroll'))).status).to.equal(200);
    const overview = (await (await fetch(`${url}api/overview`)).json()) as { paused: string[] };
    expect(overview.paused).to.deep.equal(['payroll']);

    expect((await act({ origin, 'x-after-token': token }, 'explode')).status).to.equal(400);
    expect((await act({ origin, 'x-after-token': token }, 'pause', 'bad\u0007name')).status).to.equal(400);
    const resumed = await act({ origin, 'x-after-token': token }, 'resume');
    expect(resumed.body).to.include({ paused: false, changed: true });
    expect((await control('GET', encodeURIComponent('pause:payroll'))).status).to.equal(404);
  });

  it('bound to 127.0.0.2 (--host), refuses a rebinding Host for the page, reads and actions', async () => {
    const { url, token } = await startUi(['--host', '127.0.0.2', '--allowed-host', 'dash.example']);
    const port = new URL(url).port;
    expect(new URL(url).hostname).to.equal('127.0.0.2');
    const id = await postWaitingTask();
    const rebound = `rebind.evil.test:${port}`;
    for (const path of ['/', '/app.js', '/api/overview', '/api/events', `/api/tasks/${encodeURIComponent(id)}`]) {
      const res = await send(url, { path, headers: { host: rebound } });
      expect(res.status, `GET ${path}`).to.equal(421);
      expect(res.text, `GET ${path}`).not.to.contain(db.dbName);
    }
    const cancel = await send(url, {
      method: 'POST',
      path: `/api/tasks/${encodeURIComponent(id)}/actions`,
      headers: { host: rebound, origin: `http://${rebound}`, 'content-type': 'application/json', 'x-after-token': token },
      body: '{"action":"cancel"}',
    });
    expect(cancel.status).to.equal(421);
    expect(await statusOf(id)).to.equal('waiting');

    // The names it was told about: its own address, the loopback names, --allowed-host.
    for (const host of [`127.0.0.2:${port}`, `localhost:${port}`, `dash.example:${port}`]) {
      expect((await send(url, { path: '/api/overview', headers: { host } })).status, host).to.equal(200);
    }
    expect(ui!.stderr, 'a warning names the hosts it answers under').to.contain('dash.example');
  });

  it('refuses ids starting with _ for reads and actions: _design/after-stats stays as it was', async () => {
    const { url, origin, token } = await startUi();
    const before = await db.request<{ _rev: string; status?: string }>('GET', '_design/after-stats');
    expect(before.status, 'after init made the design document').to.equal(200);
    const headers = { 'content-type': 'application/json', origin, 'x-after-token': token };
    for (const encoded of ['_design%2Fafter-stats', '%5Fdesign%2Fafter-stats']) {
      const read = await send(url, { path: `/api/tasks/${encoded}` });
      expect(read.status, `GET ${encoded}`).to.equal(400);
      expect(read.body.error).to.equal('E_RESERVED_ID');
      expect(read.text).not.to.contain('by_worker_status');
      const act = await send(url, { method: 'POST', path: `/api/tasks/${encoded}/actions`, headers, body: '{"action":"cancel"}' });
      expect(act.status, `POST ${encoded}/actions`).to.equal(400);
      expect(act.body.error).to.equal('E_RESERVED_ID');
    }
    const after = await db.request<{ _rev: string; status?: string }>('GET', '_design/after-stats');
    expect(after.body._rev, 'the design document was not written').to.equal(before.body._rev);
    expect(after.body.status).to.equal(undefined);
  });

  it('passes nothing but tasks through: no _all_docs, no other document', async () => {
    const { url, origin, token } = await startUi();
    const secret = `not-a-task-${Date.now()}`;
    // Not a task (no worker); `done` so that the database's validate_doc_update lets it in.
    expect((await db.request('PUT', 'notes', { status: 'done', text: secret })).status).to.equal(201);
    const taskId = await postWaitingTask();

    for (const path of ['/api/tasks/_all_docs', '/api/tasks/%5Fall_docs', '/api/tasks/_all_docs?include_docs=true', '/api/_all_docs', '/api/tasks/..', '/api/tasks/%2E%2E']) {
      const res = await send(url, { path });
      expect(res.status, path).to.be.oneOf([400, 404]);
      expect(res.body.rows, path).to.equal(undefined);
      expect(res.text, path).not.to.contain(taskId);
      expect(res.text, path).not.to.contain(secret);
    }
    const notATask = await send(url, { path: '/api/tasks/notes' });
    expect(notATask.status).to.equal(404);
    expect(notATask.text).not.to.contain(secret);
    const act = await send(url, {
      method: 'POST',
      path: '/api/tasks/notes/actions',
      headers: { 'content-type': 'application/json', origin, 'x-after-token': token },
      body: '{"action":"cancel"}',
    });
    expect(act.status).to.equal(404);
    expect((await db.request<{ status?: string }>('GET', 'notes')).body.status, 'the document was not written').to.equal('done');

    const task = await send(url, { path: `/api/tasks/${encodeURIComponent(taskId)}` });
    expect(task.status, 'a task is still shown').to.equal(200);
  });
});

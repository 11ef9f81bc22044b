/**
 * The dashboard as an operator meets it: a real headless Chromium (Debian's `chromium`, which
 * `make test` installs when missing) driven by playwright-core, tasks posted over HTTP like curl
 * does, a worker started with the CLI, and what the page and the task documents show.
 *
 * Set AFTER_SCREENSHOTS=<dir> to keep screenshots of the pages (docs/img/ holds the README's).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { silentLogger } from '../../src/log';
import type { Connection } from '../../src/store/connection';
import type { TaskDoc } from '../../src/types';
import { startDashboard, type Dashboard } from '../../src/ui/server';
import { REPO_ROOT, spawnCli, startDb, waitFor, waitForStatus, type ChildHandle, type TestDb } from '../helpers';

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
const FIXTURE_JOBS = path.join(REPO_ROOT, 'test', 'fixtures', 'jobs');
const SCREENSHOTS = process.env.AFTER_SCREENSHOTS;

describe('dashboard (after ui) in headless Chromium', function () {
  this.timeout(90_000);
  let db: TestDb;
  let conn: Connection;
  let dashboard: Dashboard;
  let profileDir: string;
  let browser: BrowserContext;
  let page: Page;
  let worker: ChildHandle | undefined;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      // `make test` installs it (apt-get install chromium); only a machine where that failed gets here.
      console.log(`    note: ${CHROMIUM} is missing (apt-get install chromium); the dashboard browser tests are skipped`);
      this.skip();
    }
    db = await startDb({ config: { worker: { heartbeat_ms: 1000 } } });
    conn = db.connect();
    dashboard = await startDashboard({ conn, port: 0, heartbeatMs: 1000, log: silentLogger() });
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  after(async () => {
    await browser?.close();
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
    await dashboard?.close();
    conn?.close();
    await db?.destroy();
  });

  afterEach(async () => {
    if (worker?.running) {
      worker.kill('SIGTERM');
      await worker.exited;
    }
    worker = undefined;
  });

  async function startWorker(name: string): Promise<ChildHandle> {
    const child = spawnCli(['start', name, '--jobs', FIXTURE_JOBS], { env: db.env });
    await child.waitForOutput(new RegExp(`worker ${name} ready`), 20_000);
    return child;
  }

  async function post(task: Record<string, unknown>): Promise<string> {
    const res = await db.request<{ id: string }>('POST', '', task);
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body.id;
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
    worker = await startWorker('ui-live');
    await openOverview();
    await page.waitForSelector('#instances tr[data-instance] >> text=ui-live');

    const id = await post({ worker: 'ui-live', date: new Date(Date.now() + 2000).toISOString(), job: { name: 'slow', arguments: [500] } });
    const row = `#activity tr[data-task-id="${id}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    expect(await page.textContent(row)).to.contain('ui-live').and.contain('slow');
    await page.waitForSelector(`${row}[data-status="done"]`, { timeout: 20_000 });

    expect((await waitForStatus(db, id, 'done')).status).to.equal('done');
    expect(await stillSamePage(), 'the page was reloaded').to.equal(true);
    await page.waitForSelector('#counts tr[data-worker="ui-live"] td[data-status="done"] >> text=1');
    await screenshot('dashboard-overview.png');
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
    worker = await startWorker('ui-fails');
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
    await screenshot('dashboard-task.png');

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
});

describe('after ui (the command)', function () {
  this.timeout(60_000);
  let db: TestDb;
  let ui: ChildHandle | undefined;

  before(async () => {
    db = await startDb();
  });
  after(async () => {
    await db.destroy();
  });
  afterEach(async () => {
    if (ui?.running) {
      ui.kill('SIGTERM');
      await ui.exited;
    }
  });

  it('serves the page on 127.0.0.1, never shows a credential, and refuses cross-site actions', async () => {
    ui = spawnCli(['ui', '--port', '0'], { env: db.env });
    const [, url] = await ui.waitForOutput(/dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/, 20_000);
    const page = await fetch(url!);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('After dashboard');

    const overviewText = await (await fetch(`${url}api/overview`)).text();
    const overview = JSON.parse(overviewText) as { database: string };
    expect(overview.database).to.contain(db.dbName);
    const password = new URL(db.url).password;
    if (password) {
      expect(overviewText).to.not.contain(password);
      expect(ui.stdout + ui.stderr).to.not.contain(password);
    }

    const id = (await db.request<{ id: string }>('POST', '', { worker: 'w', date: '2040-01-01', job: 'succeeds', status: 'waiting' })).body.id;
    const action = (headers: Record<string, string>, body = '{"action":"cancel"}') =>
      fetch(`${url}api/tasks/${id}/actions`, { method: 'POST', headers, body });
    expect((await action({ 'content-type': 'text/plain' })).status, 'a form post').to.equal(400);
    expect((await action({ 'content-type': 'application/json', origin: 'http://evil.example' })).status, 'another origin').to.equal(403);
    expect((await db.request<TaskDoc>('GET', id)).body.status).to.equal('waiting');
    expect((await action({ 'content-type': 'application/json' }, '{"action":"explode"}')).status).to.equal(400);
    const ok = await action({ 'content-type': 'application/json' });
    expect(ok.status).to.equal(200);
    expect((await db.request<TaskDoc>('GET', id)).body.status).to.equal('cancel');
    const again = await action({ 'content-type': 'application/json' });
    expect(again.status, 'cancel of a task already canceling').to.equal(409);
  });
});

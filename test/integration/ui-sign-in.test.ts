/**
 * Sign-in to the dashboard with the database's own users, in headless Chromium: a member with
 * the operator role reads and acts, a member without it reads only, a wrong password and a user
 * who is not a member are refused, and no API answers without a session. The database's
 * `_security` decides who reads: each request goes with the signed-in user's own credentials
 * (CouchDB's `_session` cookie; HTTP Basic on the embedded server).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { silentLogger } from '../../src/log';
import { openConnection, type Connection } from '../../src/store/connection';
import type { TaskDoc } from '../../src/types';
import { startDashboard, type Dashboard } from '../../src/ui/server';
import { useSuiteDb, waitFor } from '../helpers';
import { databaseRequest } from '../helpers/db';

const CHROMIUM = '/usr/bin/chromium';

describe('dashboard sign-in with the database\'s users (after ui --login)', function () {
  this.timeout(90_000);
  const suffix = randomBytes(3).toString('hex');
  const users = { operator: `ui-ann-${suffix}`, reader: `ui-cat-${suffix}`, stranger: `ui-bob-${suffix}` };
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let conn: Connection;
  let dashboard: Dashboard;
  let profileDir: string;
  let browser: BrowserContext;
  let page: Page;

  before(function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
  });
  after(async () => {
    await browser?.close();
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
    await dashboard?.close();
    conn?.close();
  });
  // The users are the server's (CouchDB's are shared by every test database): removed before the database goes.
  after(async () => {
    for (const name of Object.values(users)) {
      const doc = await usersDb()<{ _rev?: string }>('GET', `org.couchdb.user:${name}`);
      if (doc.body._rev) await usersDb()('DELETE', `org.couchdb.user:${name}?rev=${doc.body._rev}`);
    }
  });
  const db = useSuiteDb();
  const usersDb = () => databaseRequest(db.adminUrl, '_users');
  before(async () => {
    for (const [kind, name] of Object.entries(users)) {
      const roles = kind === 'operator' ? ['after-operator'] : [];
      const res = await usersDb()('PUT', `org.couchdb.user:${name}`, { name, password, roles, type: 'user' });
      expect(res.status, `user ${name} created`).to.be.oneOf([201, 202]);
    }
    // Members only: the operator and the reader, on every database the dashboard reads.
    for (const name of [db.dbName, `${db.dbName}_control`, `${db.dbName}_stats`]) {
      const res = await databaseRequest(db.adminUrl, name)('PUT', '_security', { admins: { names: [], roles: [] }, members: { names: [users.operator, users.reader], roles: [] } });
      expect(res.status, `_security of ${name}`).to.equal(200);
    }
    await db.adminRequest('PUT', 'ui-secret-task', { worker: 'ui-members', date: '2040-01-01T00:00:00Z', job: 'succeeds', status: 'waiting' });
    // The dashboard's own feed goes with the configured credentials: here the admin's.
    const config = db.config();
    conn = openConnection({ ...config, couchdb: { ...config.couchdb, url: db.adminUrl } }, { log: silentLogger() });
    dashboard = await startDashboard({ conn, config, login: true, port: 0, heartbeatMs: 1000, log: silentLogger() });
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'], viewport: { width: 1280, height: 900 } });
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  async function signIn(name: string, pass = password): Promise<void> {
    await page.goto(dashboard.url);
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#signin-name', name);
    await page.fill('#signin-password', pass);
    await page.click('#signin-submit');
  }

  async function signOut(): Promise<void> {
    await page.click('#sign-out');
    await page.waitForSelector('#signin:not([hidden])');
  }

  it('answers no API request without a session, on loopback too when started with --login', async () => {
    for (const route of ['/api/overview', '/api/tasks?status=waiting', '/api/tasks/ui-secret-task', '/api/events']) {
      const res = await fetch(new URL(route, dashboard.url));
      expect(res.status, route).to.equal(401);
      expect(await res.text(), route).not.to.contain('ui-secret-task');
    }
    const session = (await (await fetch(new URL('/api/session', dashboard.url))).json()) as { required: boolean; user: unknown };
    expect(session).to.deep.equal({ required: true, user: null });
  });

  it('refuses a wrong password and a user who is not a member of the database', async () => {
    await signIn(users.operator, 'not-the-password');
    await page.waitForSelector('#signin-result >> text=wrong');
    expect(await page.isVisible('#overview')).to.equal(false);

    await signIn(users.stranger);
    await page.waitForSelector('#signin-result >> text=may not read');
    expect(await page.textContent('#signin-result')).to.contain(db.dbName);
    expect(await page.isVisible('#overview')).to.equal(false);
  });

  it('lets a member with the operator role in: the counts, a task, and an action written under their name', async () => {
    await signIn(users.operator);
    await page.waitForSelector('#counts tr[data-worker="ui-members"]');
    expect(await page.textContent('#user')).to.equal(users.operator);
    await page.goto(`${dashboard.url}#/task/ui-secret-task`);
    await page.waitForSelector('#task-status.waiting');
    await page.click('#action-cancel');
    const canceled = await waitFor(async () => {
      const doc = (await db.adminRequest<TaskDoc>('GET', 'ui-secret-task')).body;
      return doc.status === 'cancel' ? doc : undefined;
    }, { timeoutMs: 10_000, what: 'the task to be canceled' });
    expect(canceled.status).to.equal('cancel');
    await signOut();
    expect((await fetch(new URL('/api/overview', dashboard.url))).status).to.equal(401);
  });

  it('lets a member without the operator role read, and refuses its actions', async () => {
    await db.adminRequest('PUT', 'ui-reader-task', { worker: 'ui-members', date: '2040-01-01T00:00:00Z', job: 'succeeds', status: 'waiting' });
    await signIn(users.reader);
    await page.waitForSelector('#counts tr[data-worker="ui-members"]');
    expect(await page.textContent('#user')).to.equal(`${users.reader} (reads only)`);
    await page.goto(`${dashboard.url}#/task/ui-reader-task`);
    await page.waitForSelector('#task-status.waiting');
    await page.click('#action-cancel');
    await page.waitForSelector('#action-result >> text=may read but not act');
    expect((await db.adminRequest<TaskDoc>('GET', 'ui-reader-task')).body.status).to.equal('waiting');
    await signOut();
  });
});

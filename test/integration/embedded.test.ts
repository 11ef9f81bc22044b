/**
 * The embedded server (`after db start|stop|status` underneath): a pouchdb-server child
 * with its files on disk, one per AFTER_HOME, never started twice and never on a taken port.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AfterError } from '../../src/errors';
import { readAdminCredentials } from '../../src/embedded/admin-credentials';
import { embeddedFiles } from '../../src/embedded/server-files';
import { embeddedStatus, startEmbedded, stopEmbedded } from '../../src/embedded/server';
import { freePort, isAlive, startDb, waitFor, waitForStatus } from '../helpers/index';

describe('embedded server', function () {
  let root: string;
  let home: string;
  let dir: string;
  let port: number;

  beforeEach(async function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-embedded-'));
    home = path.join(root, 'home');
    dir = path.join(root, 'data');
    port = await freePort();
  });

  afterEach(async function () {
    await stopEmbedded(home);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const start = (overrides: Partial<Parameters<typeof startEmbedded>[0]> = {}) =>
    startEmbedded({ host: '127.0.0.1', port, dir, home, background: true, ...overrides });

  it('starts in the background on the given port and status shows it', async function () {
    const server = await start();

    expect(server.url).to.equal(`http://127.0.0.1:${port}`);
    const welcome = await getJson(`${server.url}/`);
    expect(welcome.status).to.equal(200);
    expect(await embeddedStatus(home)).to.deep.equal({ running: true, pid: server.pid, url: server.url, dir });
    expect(fs.readFileSync(embeddedFiles(home).pid, 'utf8').trim()).to.equal(String(server.pid));
    // The server writes its config and log where told, not into the caller's cwd.
    expect(fs.existsSync(path.join(dir, 'pouchdb-server.json'))).to.equal(true);
    expect(fs.existsSync(path.join(process.cwd(), 'log.txt'))).to.equal(false);
  });

  it('keeps the data on disk across stop and start', async function () {
    const first = await start();
    // Creating a database needs the admin `after db start` generated in the home.
    expect((await send('PUT', `${first.url}/keep`, undefined, adminHeaders(home))).status).to.equal(201);
    expect((await send('PUT', `${first.url}/keep/task-1`, { worker: 'w', date: '2030-01-01' })).status).to.equal(201);

    expect(await stopEmbedded(home)).to.deep.equal({ stopped: true, pid: first.pid });
    expect(fs.existsSync(embeddedFiles(home).pid)).to.equal(false);
    expect(await embeddedStatus(home)).to.deep.equal({ running: false });
    let refused: unknown;
    await fetch(`${first.url}/`).catch((err: unknown) => (refused = err));
    expect(refused, 'the server still answers after stop').to.be.instanceOf(Error);

    const second = await start();
    expect(second.pid).to.not.equal(first.pid);
    const task = await getJson(`${second.url}/keep/task-1`);
    expect(task.status).to.equal(200);
    expect(task.body).to.include({ worker: 'w', date: '2030-01-01' });
  });

  it('refuses a second start from the same home, naming the running server', async function () {
    const server = await start();

    const err = await start({ port: await freePort() }).catch((e: unknown) => e);

    expect(err).to.be.instanceOf(AfterError);
    expect((err as AfterError).code).to.equal('E_EMBEDDED_RUNNING');
    expect((err as AfterError).message).to.include(server.url);
    expect((await getJson(`${server.url}/`)).status).to.equal(200);
  });

  it('refuses a port taken by another embedded server', async function () {
    await start();
    const otherHome = path.join(root, 'other-home');

    const err = await start({ home: otherHome, dir: path.join(root, 'other-data') }).catch((e: unknown) => e);

    expect((err as AfterError).code).to.equal('E_PORT_TAKEN');
    expect((err as AfterError).message).to.include(String(port)).and.match(/pouchdb-server/);
    expect(fs.existsSync(embeddedFiles(otherHome).pid)).to.equal(false);
  });

  it('refuses a port taken by some other program', async function () {
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const err = await start().catch((e: unknown) => e);

      expect((err as AfterError).code).to.equal('E_PORT_TAKEN');
      expect((err as AfterError).message).to.include(String(port)).and.not.match(/pouchdb-server/);
      expect(err).to.be.instanceOf(AfterError);
      expect((await embeddedStatus(home)).running).to.equal(false);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('cleans up a stale pid file left by a server that is gone', async function () {
    const server = await start();
    process.kill(server.pid, 'SIGKILL');
    await waitForExit(server.pid);

    expect(await embeddedStatus(home)).to.deep.equal({ running: false });
    expect(await stopEmbedded(home)).to.deep.equal({ stopped: false, pid: server.pid });
    expect(fs.existsSync(embeddedFiles(home).pid)).to.equal(false);

    const again = await start();
    expect((await getJson(`${again.url}/`)).status).to.equal(200);
  });

  it('stop with nothing running reports so', async function () {
    expect(await stopEmbedded(home)).to.deep.equal({ stopped: false });
  });

  it('runs in the foreground until stopped, then cleans its pid file', async function () {
    const server = await start({ background: false });
    expect(server.exited).to.be.instanceOf(Promise);
    expect((await embeddedStatus(home)).pid).to.equal(server.pid);

    expect((await stopEmbedded(home)).stopped).to.equal(true);
    expect(await server.exited).to.be.a('number');
    expect(fs.existsSync(embeddedFiles(home).pid)).to.equal(false);
  });
});

describe('test harness: startDb on the embedded server', function () {
  before(function () {
    if (process.env.COUCHDB_URL) this.skip();
  });

  it('restarts the server on the same port with the tasks kept', async function () {
    const db = await startDb();
    try {
      const created = await db.request<{ id: string }>('POST', '', { worker: 'w', date: '2030-01-01', job: 'a', status: 'waiting' });
      await db.stop();
      const down = await db.request('GET', created.body.id).catch((err: unknown) => err);
      expect(down, 'a request while stopped').to.be.instanceOf(Error);

      await db.restart();

      expect((await waitForStatus(db, created.body.id, 'waiting', 5000)).worker).to.equal('w');
    } finally {
      await db.destroy();
    }
    expect(fs.existsSync(db.root)).to.equal(false);
  });
});

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return { status: res.status };
}

/** Basic credentials of the admin the server started from `home` generated. */
function adminHeaders(home: string): Record<string, string> {
  const admin = readAdminCredentials(home)!;
  return { authorization: `Basic ${Buffer.from(`${admin.name}:${admin.password}`).toString('base64')}` };
}

function waitForExit(pid: number): Promise<true> {
  return waitFor(async () => !isAlive(pid) || undefined, { timeoutMs: 10_000, what: `pid ${pid} to exit` });
}

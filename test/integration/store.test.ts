/**
 * The TaskStore against a real server: an embedded server (express-pouchdb, launcher.js) child
 * of this test (killed, restarted and frozen with SIGSTOP at will), and, when COUCHDB_URL is set,
 * Apache CouchDB too (reached through a proxy of this test, which plays the outages a shared
 * server cannot). The store connects without credentials, as a worker does; the test installs
 * the indexes as the server admin.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { Writable } from 'node:stream';
import winston from 'winston';
import { parseConfig } from '../../src/config/load';
import { type AfterConfig } from '../../src/config/types';
import { initDatabase } from '../../src/store/for-operators/init';
import { createLogger, silentLogger, type Logger } from '../../src/log';
import { createStore } from '../../src/store/for-workers/couch-store';
import type { ChangeBatch, Feed, TaskStore } from '../../src/store/types';
import type { TaskDoc } from '../../src/types';
import { freePort } from '../helpers/ports';
import { taskStoreContract } from '../helpers/store-contract';
import { startCouchTarget, startPouchTarget, type StoreTarget } from '../helpers/store-targets';
import { waitFor } from '../helpers/wait';

const HEARTBEAT_MS = 300;

describe('store (pouchdb-server)', function () {
  storeSuite(() => startPouchTarget());
});

(process.env.COUCHDB_URL ? describe : describe.skip)('store (Apache CouchDB at COUCHDB_URL)', function () {
  storeSuite(() => startCouchTarget(process.env.COUCHDB_URL!));
});

function storeSuite(startTarget: () => Promise<StoreTarget>): void {
  let target: StoreTarget;
  let store: TaskStore | undefined;
  const feeds: Feed[] = [];

  before(async () => {
    target = await startTarget();
    await initDatabase(configFor(target.adminUrl, target.dbName), { log: silentLogger() });
  });
  after(async () => {
    await target?.destroy();
  });
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((feed) => feed.stop()));
    await store?.close();
    store = undefined;
  });

  async function openStore(options: { url?: string; retry?: 'forever' | 'fail-fast'; log?: Logger } = {}): Promise<TaskStore> {
    store = await createStore(configFor(options.url ?? target.storeUrl, target.dbName), {
      retry: options.retry ?? 'forever',
      log: options.log,
    });
    return store;
  }

  function follow(s: TaskStore, worker: string, since: string): { batches: ChangeBatch[]; reconnects: number[]; seen(): TaskDoc[] } {
    const batches: ChangeBatch[] = [];
    const reconnects: number[] = [];
    const feed = s.follow({
      worker,
      since,
      heartbeatMs: HEARTBEAT_MS,
      onBatch: (batch) => void batches.push(batch),
      onReconnect: () => reconnects.push(Date.now()),
    });
    feeds.push(feed);
    return { batches, reconnects, seen: () => batches.flatMap((b) => b.docs) };
  }

  describe('the TaskStore contract', () => {
    taskStoreContract(() => openStore());
  });

  it('tells which server it talks to', async () => {
    const s = await openStore();
    expect(s.server.kind).to.equal(target.kind);
    expect(s.server.version).to.match(/^\d+\.\d+/);
    expect(s.server.clustered).to.equal(false);
  });

  it('estimates the database clock (same machine: under a second apart)', async () => {
    const s = await openStore();
    await s.updateSeq();
    expect(Math.abs(s.clockSkewMs())).to.be.below(1000);
    expect(Math.abs(s.dbNow() - Date.now())).to.be.below(1000);
  });

  it('sends 100 writes of one tick as one _bulk_docs and gives each its new _rev', async () => {
    const s = await openStore({ url: target.countedUrl });
    const before = target.proxy.count('POST', '/_bulk_docs');
    const ids = Array.from({ length: 100 }, (_, i) => `batch-${i}-${randomBytes(3).toString('hex')}`);
    const results = (await Promise.all(ids.map((id) => s.write([{ doc: { _id: id, worker: 'w', status: 'waiting', date: '2030-01-01' } }])))).flat();
    expect(target.proxy.count('POST', '/_bulk_docs') - before).to.equal(1);
    for (const [i, result] of results.entries()) {
      expect(result.kind, ids[i]).to.equal('written');
      if (result.kind !== 'written') continue;
      const stored = await s.get(ids[i]);
      expect(stored?._rev).to.equal(result.doc._rev);
    }
  });

  it('writes a burst of many requests at once without a listener-leak warning (3,000 documents: 15 requests in flight)', async () => {
    const s = await openStore({ url: target.countedUrl });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const before = target.proxy.count('POST', '/_bulk_docs');
      const ids = Array.from({ length: 3000 }, (_, i) => `many-${i}-${randomBytes(3).toString('hex')}`);
      const results = await s.write(ids.map((id) => ({ doc: { _id: id, worker: 'w', status: 'waiting', date: '2030-01-01' } })));
      expect(results.filter((result) => result.kind === 'written')).to.have.length(3000);
      expect(target.proxy.count('POST', '/_bulk_docs') - before).to.be.at.least(11);
      // A warning is emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).to.deep.equal([]);
  });

  it('keeps feeding across a database restart: nothing written before or after is lost', async function () {
    const s = await openStore();
    const worker = `restart-${randomBytes(3).toString('hex')}`;
    const feed = follow(s, worker, await s.updateSeq());
    const write = (id: string) => s.write([{ doc: { _id: `${worker}-${id}`, worker, status: 'waiting' } }]);
    const has = (id: string) => feed.seen().some((doc) => doc._id === `${worker}-${id}`);

    await write('before');
    await waitFor(() => Promise.resolve(has('before')), { timeoutMs: 10_000, what: 'the change before the restart' });
    await target.goDown();
    await target.comeBack();
    await Promise.all([write('after-1'), write('after-2')]);
    await waitFor(() => Promise.resolve(has('after-1') && has('after-2')), { timeoutMs: 20_000, what: 'the changes after the restart' });
    expect(feed.reconnects.length).to.be.at.least(1);
  });

  it('reconnects when the database stops sending even heartbeats', async function () {
    const lines: string[] = [];
    const s = await openStore({ log: capturingLogger(lines) });
    const worker = `frozen-${randomBytes(3).toString('hex')}`;
    const feed = follow(s, worker, await s.updateSeq());
    target.freeze();
    try {
      await waitFor(() => Promise.resolve(lines.some((line) => /no byte/.test(line))), { timeoutMs: 3 * HEARTBEAT_MS + 2000, what: 'the watchdog' });
    } finally {
      target.thaw();
    }
    await s.write([{ doc: { _id: `${worker}-x`, worker, status: 'waiting' } }]);
    await waitFor(() => Promise.resolve(feed.seen().some((doc) => doc._id === `${worker}-x`)), { timeoutMs: 20_000, what: 'the change after the thaw' });
    expect(feed.reconnects.length).to.be.at.least(1);
  });

  it('holds a write through an outage and completes it when the database is back', async () => {
    const s = await openStore();
    const id = `outage-${randomBytes(3).toString('hex')}`;
    await target.goDown();
    let settled = false;
    const pending = s.write([{ doc: { _id: id, worker: 'w', status: 'waiting' } }]).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(settled, 'the write must wait for the database').to.equal(false);
    await target.comeBack();
    const [result] = await pending;
    expect(result!.kind).to.equal('written');
    expect((await target.raw('GET', id)).status).to.equal(200);
  });

  it('ends a write still waiting for the database when the store closes', async () => {
    const s = await openStore();
    await target.goDown();
    try {
      const pending = s.write([{ doc: { _id: `closed-${randomBytes(3).toString('hex')}`, worker: 'w' } }]).then(
        ([outcome]) => (outcome!.kind === 'failed' ? (outcome!.error as { code?: string }).code : expect.fail('the database is down')),
        (e: { code?: string }) => e.code,
      );
      await new Promise((resolve) => setImmediate(resolve));
      await s.close();
      expect(await pending).to.equal('E_STORE_CLOSED');
    } finally {
      await target.comeBack();
    }
  });

  it('fails fast with a one-line error when asked to, naming the cause', async () => {
    const port = await freePort();
    const err = await openStore({ url: `http://someone:s3cr3t-pw@127.0.0.1:${port}`, retry: 'fail-fast' }).then(
      () => expect.fail('no server listens there'),
      (e: { code?: string; message: string }) => e,
    );
    expect(err.code).to.equal('E_DB_UNREACHABLE');
    expect(err.message).to.include(`127.0.0.1:${port}`).and.include('ECONNREFUSED');
    expect(err.message).not.to.include('s3cr3t-pw');
  });

  it('never shows the password in an error', async () => {
    const wrong = new URL(target.storeUrl);
    wrong.username = 'someone';
    wrong.password = 's3cr3t-pw';
    const lines: string[] = [];
    const err = await openStore({ url: wrong.toString(), retry: 'fail-fast', log: capturingLogger(lines) }).then(
      () => expect.fail('the server must refuse these credentials'),
      (e: Error & { code?: string }) => e,
    );
    expect(err.code).to.equal('E_DB_AUTH');
    for (const text of [err.message, String(err.stack), ...lines]) expect(text).not.to.include('s3cr3t-pw');

    // with the right credentials, an error names the database but not the password
    const realPassword = new URL(target.storeUrl).password;
    const missing = await createStore(configFor(target.storeUrl, `after_test_missing_${randomBytes(3).toString('hex')}`), { retry: 'fail-fast' });
    try {
      const e = await missing.updateSeq().then(() => expect.fail('the database does not exist'), (x: { code?: string; message: string }) => x);
      expect(e.code).to.equal('E_DB_MISSING');
      if (realPassword) expect(e.message).not.to.include(realPassword);
    } finally {
      await missing.close();
    }
  });
}

function configFor(url: string, db: string): AfterConfig {
  return parseConfig({ couchdb: { url, db } }, { file: '(store test)', base: os.tmpdir() });
}

/** A logger whose lines (after the credential scrubbing every logger does) land in `lines`. */
function capturingLogger(lines: string[]): Logger {
  const logger = createLogger({ level: 'debug', console: false });
  const sink = new Writable({
    objectMode: true,
    write(info: { message: unknown }, _encoding, done) {
      lines.push(String(info.message));
      done();
    },
  });
  logger.add(new winston.transports.Stream({ stream: sink }));
  return logger;
}

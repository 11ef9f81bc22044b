/**
 * The run figures recorder against a stand-in database: what it writes, how often, and that a
 * write whose answer was lost never counts a run twice. Only Date and the interval timer are
 * faked, so the minutes pass at once.
 */
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { CouchRequestError } from '../../src/errors';
import { SafeEmitter } from '../../src/events';
import { silentLogger } from '../../src/log';
import { startRunStatsRecorder } from '../../src/metrics/run-stats-recorder';
import type { Connection, RequestOptions } from '../../src/store/connection';
import type { RunsDoc } from '../../src/store/run-stats-db';
import { figuresOf } from '../../src/stats/run-figures';
import type { WorkerEvents } from '../../src/worker/events';

/** A database of one kind of document, counting the writes; `fail` makes the next write fail. */
function standIn() {
  const docs = new Map<string, RunsDoc>();
  const writes: RunsDoc[] = [];
  let fail: CouchRequestError | 'lose-answer' | undefined;
  let rev = 0;
  const conn = {
    dbName: 'tasks',
    displayUrl: 'http://db',
    clock: { dbNow: () => Date.now() },
    close() {},
    async request(options: RequestOptions) {
      const id = decodeURIComponent(options.path);
      if (options.method === 'PUT') {
        if (fail instanceof CouchRequestError) {
          const err = fail;
          fail = undefined;
          throw err;
        }
        const doc = options.body as RunsDoc;
        const stored = docs.get(id);
        if (stored && stored._rev !== doc._rev) throw new CouchRequestError('E_DB_CONFLICT', 'conflict', 409, 'Document update conflict.');
        const next = { ...JSON.parse(JSON.stringify(doc)), _rev: `${++rev}-x` } as RunsDoc;
        docs.set(id, next);
        writes.push(next);
        if (fail === 'lose-answer') {
          fail = undefined;
          throw new CouchRequestError('E_DB_UNREACHABLE', 'socket hang up');
        }
        return { status: 201, body: { rev: next._rev }, headers: {} };
      }
      if (options.path === '_all_docs') return { status: 200, body: { rows: [] }, headers: {} };
      const stored = docs.get(id);
      if (!stored) throw new CouchRequestError('E_DB_HTTP', 'not found', 404, 'missing');
      return { status: 200, body: stored, headers: {} };
    },
  };
  return { conn: conn as unknown as Connection, docs, writes, failNext: (how: CouchRequestError | 'lose-answer') => (fail = how) };
}

describe('run figures recorder', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ now: Date.parse('2026-06-01T12:00:05Z'), toFake: ['Date', 'setInterval', 'clearInterval'] });
  });
  afterEach(() => clock.uninstall());

  const worker = () => ({ name: 'mailer', instance: 'web1:42:abc', events: new SafeEmitter<WorkerEvents>() });
  const run = (w: ReturnType<typeof worker>, id: string, lateMs: number, finished: WorkerEvents['task:finished']) => {
    w.events.emit('task:started', { id, job: 'send', lateMs });
    w.events.emit('task:finished', { ...finished, id });
  };

  it('writes at most once a minute, nothing while idle, and its figures add up', async () => {
    const db = standIn();
    const w = worker();
    const recorder = startRunStatsRecorder(w, { conn: db.conn, log: silentLogger() });
    for (let i = 0; i < 50; i++) run(w, `t${i}`, 20, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    run(w, 'bad', 3000, { id: '', status: 'error', durationMs: 1, outcome: 'failure', error: 'x' });
    run(w, 'again', 5, { id: '', status: 'waiting', durationMs: 1, outcome: 'failure', error: 'x' });
    await clock.tickAsync(59_000);
    expect(db.writes, 'nothing before the minute').to.have.length(0);
    await clock.tickAsync(1_000);
    expect(db.writes).to.have.length(1);
    await clock.tickAsync(5 * 60_000);
    expect(db.writes, 'no news: no write').to.have.length(1);
    const doc = db.docs.get('runs:2026-06-01T12:mailer:web1:42:abc')!;
    expect(doc).to.include({ worker: 'mailer', instance: 'web1:42:abc', hour: '2026-06-01T12' });
    expect(figuresOf(doc.total)).to.include({ done: 50, failed: 1, retried: 1, started: 52 });
    expect(Object.keys(doc.slots), 'the 10-second slot the runs fell in').to.deep.equal(['0']);
    await recorder.stop();
  });

  it('does not count twice after a write whose answer was lost, and writes what is left when stopped', async () => {
    const db = standIn();
    const w = worker();
    const recorder = startRunStatsRecorder(w, { conn: db.conn, log: silentLogger() });
    run(w, 'a', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    db.failNext('lose-answer');
    await clock.tickAsync(60_000);
    run(w, 'b', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    await recorder.stop();
    const doc = db.docs.get('runs:2026-06-01T12:mailer:web1:42:abc')!;
    expect(figuresOf(doc.total)).to.include({ done: 2, started: 2 });
  });

  it('starts a new document at the turn of the hour, and stops writing when the database is missing', async () => {
    const db = standIn();
    const w = worker();
    const recorder = startRunStatsRecorder(w, { conn: db.conn, log: silentLogger() });
    run(w, 'a', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    await clock.tickAsync(60 * 60_000);
    run(w, 'b', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    await clock.tickAsync(60_000);
    expect([...db.docs.keys()].sort()).to.deep.equal(['runs:2026-06-01T12:mailer:web1:42:abc', 'runs:2026-06-01T13:mailer:web1:42:abc']);
    db.failNext(new CouchRequestError('E_DB_MISSING', 'missing', 404, 'Database does not exist.'));
    run(w, 'c', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    await clock.tickAsync(60_000);
    const writes = db.writes.length;
    run(w, 'd', 1, { id: '', status: 'done', durationMs: 1, outcome: 'success' });
    await clock.tickAsync(3 * 60_000);
    expect(db.writes.length, 'no write after the database was found missing').to.equal(writes);
    await recorder.stop();
  });
});

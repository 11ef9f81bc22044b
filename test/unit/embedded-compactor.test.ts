import { expect } from 'chai';
import { startCompactor, type CompactableDb } from '../../src/embedded/compactor';

/** One database: writes bump its sequence and add garbage to its files until compacted. */
class FakeDb implements CompactableDb {
  seq = 0;
  changes_: Array<{ seq: number; id: string }> = [];
  local = new Map<string, Record<string, unknown>>();
  compactedDocs: string[] = [];
  /** Bytes on disk: the live data plus what compaction has not reclaimed. */
  liveBytes = 100_000;
  garbageBytes = 0;
  fileCompactions = 0;

  write(id: string, bytes: number): void {
    this.seq++;
    this.changes_.push({ seq: this.seq, id });
    this.garbageBytes += bytes;
  }
  async info() {
    return { update_seq: this.seq };
  }
  async changes(options: { since: number | string; limit?: number }) {
    const results = this.changes_.filter((c) => c.seq > Number(options.since)).slice(0, options.limit);
    return { results, last_seq: results.length ? results[results.length - 1]!.seq : Number(options.since) };
  }
  async compactDocument(id: string) {
    this.compactedDocs.push(id);
  }
  async get(id: string) {
    const doc = this.local.get(id);
    if (!doc) throw Object.assign(new Error('missing'), { status: 404 });
    return doc;
  }
  async put(doc: Record<string, unknown>) {
    this.local.set(String(doc._id), doc);
  }
  size(): number {
    return this.liveBytes + this.garbageBytes;
  }
}

function compactorFor(dbs: Record<string, FakeDb>, lines: string[] = []) {
  return startCompactor({
    intervalMs: 0,
    listDatabases: async () => Object.keys(dbs),
    openDatabase: async (name) => dbs[name]!,
    compactFiles: async (name) => {
      dbs[name]!.garbageBytes = 0;
      dbs[name]!.fileCompactions++;
    },
    diskSize: (name) => dbs[name]!.size(),
    log: (level, message) => lines.push(`${level} ${message}`),
  });
}

describe('embedded server compaction', () => {
  it('compacts the documents changed since the last pass, and the files the first time', async () => {
    const tasks = new FakeDb();
    tasks.write('a', 1000);
    tasks.write('b', 1000);
    const lines: string[] = [];
    const compactor = compactorFor({ tasks }, lines);
    await compactor.runOnce();
    expect(tasks.compactedDocs).to.deep.equal(['a', 'b']);
    expect(tasks.fileCompactions).to.equal(1);
    expect(tasks.local.get('_local/after-compaction')).to.include({ last_seq: 2 });
    expect(lines.join('\n')).to.match(/^info compacted tasks: 2 changed documents, files compacted/);

    tasks.write('a', 1000);
    await compactor.runOnce();
    expect(tasks.compactedDocs).to.deep.equal(['a', 'b', 'a']);
    await compactor.stop();
  });

  it('leaves a quiet database alone', async () => {
    const quiet = new FakeDb();
    quiet.write('a', 10);
    const compactor = compactorFor({ quiet });
    await compactor.runOnce();
    const before = { docs: quiet.compactedDocs.length, files: quiet.fileCompactions };
    await compactor.runOnce();
    await compactor.runOnce();
    expect({ docs: quiet.compactedDocs.length, files: quiet.fileCompactions }).to.deep.equal(before);
    await compactor.stop();
  });

  it('rewrites the files of a busy database when they doubled, and once more when it goes quiet', async () => {
    const busy = new FakeDb();
    busy.write('t', 10);
    const compactor = compactorFor({ busy });
    await compactor.runOnce();
    expect(busy.fileCompactions).to.equal(1);

    busy.write('t', 50_000); // +50 %: not worth rewriting the files yet
    await compactor.runOnce();
    expect(busy.fileCompactions).to.equal(1);

    busy.write('t', 2 * 1024 * 1024); // doubled and grown by more than 1 MiB
    await compactor.runOnce();
    expect(busy.fileCompactions).to.equal(2);

    busy.write('t', 50_000);
    await compactor.runOnce();
    expect(busy.fileCompactions).to.equal(2);
    await compactor.runOnce(); // nothing written since: the deletions left behind are reclaimed
    expect(busy.fileCompactions).to.equal(3);
    expect(busy.size()).to.equal(busy.liveBytes);
    await compactor.runOnce();
    expect(busy.fileCompactions).to.equal(3);
    await compactor.stop();
  });

  it('resumes from its checkpoint after a restart, and goes on past a database that fails', async () => {
    const tasks = new FakeDb();
    tasks.write('a', 10);
    await (async () => {
      const first = compactorFor({ tasks });
      await first.runOnce();
      await first.stop();
    })();
    tasks.write('b', 10);
    const lines: string[] = [];
    const broken = new FakeDb();
    broken.write('x', 10);
    broken.changes = async () => {
      throw new Error('disk on fire');
    };
    const second = compactorFor({ broken, tasks }, lines);
    await second.runOnce();
    expect(tasks.compactedDocs).to.deep.equal(['a', 'b']);
    expect(lines.join('\n')).to.match(/warning compaction of broken failed: disk on fire/);
    await second.stop();
  });
});

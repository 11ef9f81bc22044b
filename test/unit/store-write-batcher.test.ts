import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { bulkVerdict, matchRows, postBulkDocs, type BulkRow } from '../../src/store/bulk-docs';
import type { RequestOptions } from '../../src/store/connection';
import { measureForWrite } from '../../src/task/document-size';
import { finish } from '../../src/task/writes';
import { validateTask } from '../../src/task/validate';
import { groupIntoBatches, WriteBatcher, type BatchItem } from '../../src/store/for-workers/write-batcher';
import type { WriteAnswer } from '../../src/store/for-workers/write-outcomes';

/** A sender that records each batch and answers every document with `answer`. */
function recordingSender(answer: (doc: TaskDoc, index: number) => WriteAnswer = (doc) => ({ ok: true, doc: { ...doc, _rev: '2-x' } })) {
  const batches: string[][] = [];
  return {
    batches,
    send: async (docs: TaskDoc[]): Promise<WriteAnswer[]> => {
      batches.push(docs.map((doc) => doc._id));
      return docs.map(answer);
    },
  };
}

/** One document through the batcher, its answer alone (as one caller of many would write). */
async function one(batcher: WriteBatcher, doc: TaskDoc, options: Omit<BatchItem, 'doc' | 'kind'> = {}): Promise<WriteAnswer> {
  const [answer] = await batcher.write([{ doc, kind: 'plain', ...options }]);
  return answer!;
}

describe('store: write batching', () => {
  it('sends the writes of one tick as one batch and gives each its own result', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    const results = await Promise.all(['a', 'b', 'c'].map((id) => one(batcher, { _id: id, _rev: '1-x', status: 'waiting' })));
    expect(sender.batches).to.deep.equal([['a', 'b', 'c']]);
    expect(results.map((r) => r.ok && r.doc._id)).to.deep.equal(['a', 'b', 'c']);
    expect(results.every((r) => r.ok && r.doc._rev === '2-x')).to.equal(true);
  });

  it('joins writes issued by promise continuations of the same tick', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    const first = one(batcher, { _id: 'a' });
    const second = Promise.resolve().then(() => one(batcher, { _id: 'b' }));
    await Promise.all([first, second]);
    expect(sender.batches).to.deep.equal([['a', 'b']]);
  });

  it('splits a large tick into batches of at most the limit', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send, { maxDocsPerBatch: 500 });
    await Promise.all(Array.from({ length: 1201 }, (_, i) => one(batcher, { _id: `t${i}` })));
    expect(sender.batches.map((b) => b.length)).to.deep.equal([500, 500, 201]);
  });

  it('with one request in flight at most, writes issued meanwhile leave together once it answers', async () => {
    const answers: Array<() => void> = [];
    const batches: string[][] = [];
    const batcher = new WriteBatcher(
      (docs) => {
        batches.push(docs.map((doc) => doc._id));
        return new Promise((resolve) => answers.push(() => resolve(docs.map((doc) => ({ ok: true, doc: { ...doc, _rev: '2-x' } })))));
      },
      { maxDocsPerBatch: 2, maxBatchesInFlight: 1 },
    );
    const first = ['a', 'b', 'c'].map((id) => one(batcher, { _id: id }));
    await new Promise((resolve) => setImmediate(resolve));
    const later = ['d', 'e'].map((id) => one(batcher, { _id: id }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches, 'one request in flight').to.deep.equal([['a', 'b']]);
    answers.shift()!();
    await Promise.all(first.slice(0, 2));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches, 'the rest leave in order, still one at a time').to.deep.equal([['a', 'b'], ['c', 'd']]);
    answers.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    answers.shift()!();
    const results = await Promise.all([...first, ...later]);
    expect(batches).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
    expect(results.every((r) => r.ok)).to.equal(true);
  });

  it('with requests in flight limited, sends the writes needed soonest first', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send, { maxDocsPerBatch: 2, maxBatchesInFlight: 1 });
    await Promise.all([
      one(batcher, { _id: 'late' }, { neededByMs: 3000 }),
      one(batcher, { _id: 'lease' }),
      one(batcher, { _id: 'soon' }, { neededByMs: 1000 }),
      one(batcher, { _id: 'later' }, { neededByMs: 3000 }),
    ]);
    expect(sender.batches).to.deep.equal([['lease', 'soon'], ['late', 'later']]);
  });

  it('sends writes of later ticks in later batches', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    await one(batcher, { _id: 'a' });
    await one(batcher, { _id: 'b' });
    expect(sender.batches).to.deep.equal([['a'], ['b']]);
  });

  it('reports a conflict or a refusal for one document without touching the others', async () => {
    const sender = recordingSender((doc) => {
      if (doc._id === 'stale') return { ok: false, conflict: true };
      if (doc._id === 'refused') return { ok: false, error: Object.assign(new Error('forbidden'), { code: 'E_FORBIDDEN' }) };
      return { ok: true, doc: { ...doc, _rev: '2-x' } };
    });
    const batcher = new WriteBatcher(sender.send);
    const [fine, stale, refused] = await batcher.write(['fine', 'stale', 'refused'].map((id) => ({ doc: { _id: id }, kind: 'plain' as const })));
    expect(fine).to.deep.include({ ok: true });
    expect(stale).to.deep.equal({ ok: false, conflict: true });
    expect(refused!.ok).to.equal(false);
    expect(refused && 'error' in refused && (refused.error as { code?: string }).code).to.equal('E_FORBIDDEN');
  });

  it('answers every write of a batch whose request failed with that error', async () => {
    const batcher = new WriteBatcher(async () => {
      throw new Error('database gone');
    });
    const answers = await Promise.all([one(batcher, { _id: 'a' }), one(batcher, { _id: 'b' })]);
    expect(answers.map((a) => !a.ok && 'error' in a && a.error.message)).to.deep.equal(['database gone', 'database gone']);
  });

  it("answers one caller's batch in its own order, whatever the requests it was split into", async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send, { maxDocsPerBatch: 2 });
    const answers = await batcher.write(['a', 'b', 'a', 'c'].map((id, i) => ({ doc: { _id: id, n: i }, kind: 'plain' as const })));
    // The second write of a leaves once the first has its answer: after c, which has none before it.
    expect(sender.batches).to.deep.equal([['a', 'b'], ['c'], ['a']]);
    expect(answers.map((a) => a.ok && a.doc.n)).to.deep.equal([0, 1, 2, 3]);
  });
});

describe('store: batch grouping', () => {
  const write = (id: string) => ({ doc: { _id: id } as TaskDoc });
  const ids = (batches: Array<Array<{ doc: TaskDoc }>>) => batches.map((b) => b.map((w) => w.doc._id));

  it('never puts two writes of one document in the same request', () => {
    expect(ids(groupIntoBatches(['a', 'b', 'a', 'c', 'a'].map(write), 500))).to.deep.equal([['a', 'b', 'c'], ['a'], ['a']]);
  });

  it('fills batches up to the limit in order', () => {
    expect(ids(groupIntoBatches(['a', 'b', 'c', 'd', 'e'].map(write), 2))).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('sends two writes of one document in one tick as two requests, so one meets the other as a conflict', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    await Promise.all([one(batcher, { _id: 'a', _rev: '1-x' }), one(batcher, { _id: 'a', _rev: '1-x' })]);
    expect(sender.batches).to.deep.equal([['a'], ['a']]);
  });

  it("sends a document's later write only once its earlier write has its answer, in the order given", async () => {
    const answers: Array<() => void> = [];
    const batches: string[][] = [];
    const batcher = new WriteBatcher((docs) => {
      batches.push(docs.map((doc) => `${doc._id}:${String(doc.status)}`));
      return new Promise((resolve) => answers.push(() => resolve(docs.map((doc) => ({ ok: true, doc: { ...doc, _rev: '2-x' } })))));
    });
    const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const written = batcher.write([
      { doc: { _id: 'a', _rev: '1-x', status: 'running' }, kind: 'claim' },
      { doc: { _id: 'b', status: 'waiting' }, kind: 'plain' },
      { doc: { _id: 'a', _rev: '1-x', status: 'done' }, kind: 'plain' },
    ]);
    await tick();
    const later = one(batcher, { _id: 'b', _rev: '1-x', status: 'done' });
    const other = one(batcher, { _id: 'c', status: 'waiting' });
    await tick();
    expect(batches, 'the second writes of a and b wait; c has nothing before it').to.deep.equal([['a:running', 'b:waiting'], ['c:waiting']]);
    answers.shift()!();
    await tick();
    await tick();
    expect(batches, 'once the first request has answered, both leave').to.deep.equal([['a:running', 'b:waiting'], ['c:waiting'], ['a:done', 'b:done']]);
    answers.forEach((answer) => answer());
    answers.length = 0;
    await tick();
    answers.forEach((answer) => answer());
    expect((await written).every((answer) => answer.ok)).to.equal(true);
    expect((await later).ok && (await other).ok).to.equal(true);
  });
});

describe('store: _bulk_docs rows', () => {
  it('matches rows to documents by _id, whatever order the server answers in', () => {
    const docs: TaskDoc[] = [{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }];
    const rows = [{ id: 'c', rev: '1-c' }, { id: 'a', rev: '1-a' }, { id: 'b', error: 'conflict' }];
    expect(matchRows(docs, rows)).to.deep.equal([{ id: 'a', rev: '1-a' }, { id: 'b', error: 'conflict' }, { id: 'c', rev: '1-c' }]);
  });

  it('leaves a document without a row unmatched', () => {
    expect(matchRows([{ _id: 'a' }, { _id: 'b' }], [{ id: 'a', rev: '1-a' }])).to.deep.equal([{ id: 'a', rev: '1-a' }, undefined]);
  });

  const verdicts: Array<[string, BulkRow | undefined, ReturnType<typeof bulkVerdict>]> = [
    ['written', { id: 'a', rev: '2-a', ok: true }, { kind: 'written', rev: '2-a' }],
    ['a CouchDB conflict', { id: 'a', error: 'conflict', reason: 'Document update conflict.' }, { kind: 'conflict' }],
    ['a PouchDB conflict (error: true, name, status)', { id: 'a', error: true, name: 'conflict', status: 409, message: 'Document update conflict' }, { kind: 'conflict' }],
    ['a validate_doc_update refusal', { id: 'a', error: 'forbidden', reason: 'worker is required' }, { kind: 'refused', error: 'forbidden', reason: 'worker is required' }],
    ['a PouchDB refusal', { id: 'a', error: true, name: 'forbidden', message: 'no' }, { kind: 'refused', error: 'forbidden', reason: 'no' }],
    ['no row', undefined, { kind: 'unanswered' }],
  ];
  for (const [name, row, verdict] of verdicts) it(`reads ${name}`, () => expect(bulkVerdict(row)).to.deep.equal(verdict));
});

describe('store: _bulk_docs body', () => {
  /** The JSON text postBulkDocs sends for `docs`. */
  async function sentBody(docs: object[]): Promise<string> {
    let sent: string | undefined;
    await postBulkDocs(async <T>(options: RequestOptions) => {
      sent = options.bodyJson;
      return { status: 201, body: [] as unknown as T, headers: {} };
    }, docs);
    return sent!;
  }

  it('is the JSON of { docs }, documents measured for their write (a finish) or not', async () => {
    const docs: TaskDoc[] = [
      { _id: 'a', _rev: '1-a', status: 'running', data: { text: 'é ✓', list: [1, null, true] } },
      { _id: 'b', _rev: '2-b', status: 'done' },
    ];
    measureForWrite(docs[1]!);
    expect(await sentBody(docs)).to.equal(JSON.stringify({ docs }));
    expect(await sentBody([])).to.equal('{"docs":[]}');
  });

  it('is the document as it is now when it changed (its _rev) after it was measured', async () => {
    const doc: TaskDoc = { _id: 'a', _rev: '1-a', status: 'done' };
    measureForWrite(doc);
    await sentBody([doc]);
    doc._rev = '2-a';
    doc.status = 'waiting';
    expect(await sentBody([doc])).to.equal(JSON.stringify({ docs: [doc] }));
  });

  it("writes a finish on a task a user paused during the run as paused (the size measured on the document before)", async () => {
    const doc: TaskDoc = { _id: 'a', _rev: '3-a', worker: 'w', job: 'j', date: '2030-01-01T00:00:00Z', status: 'paused', repeat: 'PT1H', lease: { instance: 'i', expires_at: '2030-01-01T00:01:00Z' } };
    const parsed = validateTask(doc);
    if (!parsed.ok) throw new Error(parsed.message);
    const run = { startedAtMs: Date.parse('2030-01-01T00:00:00Z'), finishedAtMs: Date.parse('2030-01-01T00:00:01Z'), worker: 'w', instance: 'i' };
    const next = finish(doc, parsed.task, { kind: 'success', result: null }, run, { historyLimit: 1 });
    expect(next.status).to.equal('paused');
    expect(JSON.parse(await sentBody([next])).docs[0].status).to.equal('paused');
  });
});

import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { bulkVerdict, matchRows, type BulkRow } from '../../src/store/bulk-docs';
import { groupIntoBatches, WriteBatcher, type DocOutcome } from '../../src/store/write-batcher';

/** A sender that records each batch and answers every document with `answer`. */
function recordingSender(answer: (doc: TaskDoc, index: number) => DocOutcome = (doc) => ({ ok: true, doc: { ...doc, _rev: '2-x' } })) {
  const batches: string[][] = [];
  return {
    batches,
    send: async (docs: TaskDoc[]): Promise<DocOutcome[]> => {
      batches.push(docs.map((doc) => doc._id));
      return docs.map(answer);
    },
  };
}

describe('store: write batching', () => {
  it('sends the writes of one tick as one batch and gives each its own result', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    const results = await Promise.all(['a', 'b', 'c'].map((id) => batcher.write({ _id: id, _rev: '1-x', status: 'waiting' })));
    expect(sender.batches).to.deep.equal([['a', 'b', 'c']]);
    expect(results.map((r) => r.ok && r.doc._id)).to.deep.equal(['a', 'b', 'c']);
    expect(results.every((r) => r.ok && r.doc._rev === '2-x')).to.equal(true);
  });

  it('joins writes issued by promise continuations of the same tick', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    const first = batcher.write({ _id: 'a' });
    const second = Promise.resolve().then(() => batcher.write({ _id: 'b' }));
    await Promise.all([first, second]);
    expect(sender.batches).to.deep.equal([['a', 'b']]);
  });

  it('splits a large tick into batches of at most the limit', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send, { maxDocsPerBatch: 500 });
    await Promise.all(Array.from({ length: 1201 }, (_, i) => batcher.write({ _id: `t${i}` })));
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
    const first = ['a', 'b', 'c'].map((id) => batcher.write({ _id: id }));
    await new Promise((resolve) => setImmediate(resolve));
    const later = ['d', 'e'].map((id) => batcher.write({ _id: id }));
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
      batcher.write({ _id: 'late' }, { neededByMs: 3000 }),
      batcher.write({ _id: 'lease' }),
      batcher.write({ _id: 'soon' }, { neededByMs: 1000 }),
      batcher.write({ _id: 'later' }, { neededByMs: 3000 }),
    ]);
    expect(sender.batches).to.deep.equal([['lease', 'soon'], ['late', 'later']]);
  });

  it('sends writes of later ticks in later batches', async () => {
    const sender = recordingSender();
    const batcher = new WriteBatcher(sender.send);
    await batcher.write({ _id: 'a' });
    await batcher.write({ _id: 'b' });
    expect(sender.batches).to.deep.equal([['a'], ['b']]);
  });

  it('reports a conflict or a refusal for one document without touching the others', async () => {
    const sender = recordingSender((doc) => {
      if (doc._id === 'stale') return { ok: false, conflict: true };
      if (doc._id === 'refused') return { ok: false, error: Object.assign(new Error('forbidden'), { code: 'E_FORBIDDEN' }) };
      return { ok: true, doc: { ...doc, _rev: '2-x' } };
    });
    const batcher = new WriteBatcher(sender.send);
    const [fine, stale, refused] = await Promise.allSettled([
      batcher.write({ _id: 'fine' }),
      batcher.write({ _id: 'stale' }),
      batcher.write({ _id: 'refused' }),
    ]);
    expect(fine).to.deep.include({ status: 'fulfilled' });
    expect(stale).to.deep.equal({ status: 'fulfilled', value: { ok: false, conflict: true } });
    expect(refused.status).to.equal('rejected');
    expect((refused as PromiseRejectedResult).reason.code).to.equal('E_FORBIDDEN');
  });

  it('rejects every write of a batch whose request failed', async () => {
    const batcher = new WriteBatcher(async () => {
      throw new Error('database gone');
    });
    const outcomes = await Promise.allSettled([batcher.write({ _id: 'a' }), batcher.write({ _id: 'b' })]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected']);
  });

  it('writes the document as it was when write() was called', async () => {
    const sent: TaskDoc[] = [];
    const batcher = new WriteBatcher(async (docs) => {
      sent.push(...docs);
      return docs.map((doc) => ({ ok: true as const, doc }));
    });
    const doc: TaskDoc = { _id: 'a', lease: { instance: 'i1', expires_at: '2030-01-01T00:00:00.000Z' } };
    const pending = batcher.write(doc);
    doc.lease!.instance = 'changed later';
    await pending;
    expect(sent[0].lease?.instance).to.equal('i1');
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
    await Promise.all([batcher.write({ _id: 'a', _rev: '1-x' }), batcher.write({ _id: 'a', _rev: '1-x' })]);
    expect(sender.batches).to.deep.equal([['a'], ['a']]);
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

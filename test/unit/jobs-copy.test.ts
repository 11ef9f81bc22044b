/**
 * The job's copy of its task (src/jobs/job-copy.ts): what the job reads and writes is its own,
 * the worker's document never changes, and serialising the copy gives the task as the job left it.
 */
import { expect } from 'chai';
import { jobCopy } from '../../src/jobs/job-copy';
import type { TaskDoc } from '../../src/types';

const original = (): TaskDoc => JSON.parse('{"_id":"t","_rev":"2-a","worker":"w","date":"2030-01-01","job":{"name":"j","arguments":[1,{"x":2}]},"data":{"list":[1,2],"deep":{"a":{"b":1}}},"__proto__":{"polluted":true}}') as TaskDoc;

describe('the job\'s copy of its task', () => {
  it('reads every field as the document has it, "__proto__" included, without touching the prototype', () => {
    const doc = original();
    const copy = jobCopy(doc);
    expect(copy).to.deep.equal(doc);
    expect(Object.keys(copy)).to.deep.equal(Object.keys(doc));
    expect((copy as unknown as { polluted?: unknown }).polluted).to.equal(undefined);
  });

  it('keeps what the job changes, deep or at the top, out of the worker\'s document', () => {
    const doc = original();
    const frozen = JSON.stringify(doc);
    const copy = jobCopy(doc) as TaskDoc & { data: { list: number[]; deep: { a: { b: number } } }; added?: string };
    copy.data.list.push(3);
    copy.data.deep.a.b = 99;
    (copy.job as { arguments: unknown[] }).arguments.pop();
    copy.worker = 'changed';
    copy.added = 'new';
    delete (copy as Partial<TaskDoc>).date;
    expect(JSON.stringify(doc)).to.equal(frozen);
    expect(copy.data.list).to.deep.equal([1, 2, 3]);
    expect(copy.data.deep.a.b).to.equal(99);
  });

  it('serialises as the job left it: untouched fields as they are, changed ones changed, new ones added, deleted ones gone', () => {
    const doc = original();
    const copy = jobCopy(doc) as TaskDoc & { data: { list: number[] }; added?: string };
    copy.data.list.push(3);
    copy.added = 'new';
    delete (copy as Partial<TaskDoc>).date;
    const expected = { ...JSON.parse(JSON.stringify(doc)), data: { list: [1, 2, 3], deep: { a: { b: 1 } } }, added: 'new' };
    delete expected.date;
    expect(JSON.parse(JSON.stringify(copy))).to.deep.equal(expected);
    expect(JSON.parse(JSON.stringify(copy))).to.have.own.property('__proto__');
  });

  it('keeps a field named toJSON a field', () => {
    const doc = { _id: 't', worker: 'w', toJSON: 5, data: { a: 1 } } as unknown as TaskDoc;
    const copy = jobCopy(doc);
    expect((copy as unknown as { toJSON: unknown }).toJSON).to.equal(5);
    expect(JSON.parse(JSON.stringify(copy))).to.deep.equal({ _id: 't', worker: 'w', toJSON: 5, data: { a: 1 } });
  });
});

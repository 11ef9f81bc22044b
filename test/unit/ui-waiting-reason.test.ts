import { expect } from 'chai';
import type { TaskDoc } from '../../src/types';
import { planBulkWrite, type BulkAction } from '../../src/ui/bulk-actions';
import { waitingReason, type WaitContext, type WaitKind } from '../../src/ui/waiting-reason';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const task = (fields: Partial<TaskDoc>): TaskDoc => ({ _id: 't1', _rev: '1-a', worker: 'mailer', job: 'send', status: 'waiting', date: '2026-06-01T11:59:00Z', ...fields });
const ctx = (fields: Partial<WaitContext> = {}): WaitContext => ({
  nowMs: NOW,
  instances: [{ instance: 'a:1:x' }],
  workerPaused: false,
  dependencies: [],
  limits: [],
  claimGraceMs: 2000,
  ...fields,
});

describe('why a task has not run yet, and when it will', () => {
  const cases: Array<{ name: string; doc: TaskDoc; ctx: WaitContext; kind: WaitKind; says: string }> = [
    { name: 'a paused task', doc: task({ status: 'paused' }), ctx: ctx(), kind: 'paused', says: 'Resume' },
    { name: 'a paused worker name', doc: task({}), ctx: ctx({ workerPaused: true }), kind: 'worker-paused', says: 'worker mailer is paused' },
    { name: 'a dependency not done', doc: task({ after: ['import'] }), ctx: ctx({ dependencies: [{ id: 'import', status: 'running', repeats: false }] }), kind: 'dependency', says: 'import (running)' },
    { name: 'a missing dependency', doc: task({ after: ['gone'] }), ctx: ctx({ dependencies: [{ id: 'gone', status: null, repeats: false }] }), kind: 'dependency', says: 'gone (missing)' },
    { name: 'no live instance', doc: task({}), ctx: ctx({ instances: [] }), kind: 'no-instance', says: 'after start mailer' },
    { name: 'a date to come', doc: task({ date: '2026-06-02T00:00:00Z' }), ctx: ctx(), kind: 'future', says: 'runs at 2026-06-02T00:00:00Z' },
    { name: 'held by an instance', doc: task({ status: 'scheduled', date: '2026-06-02T00:00:00Z', lease: { instance: 'a:1:x', expires_at: '2026-06-02T00:00:02Z' } }), ctx: ctx(), kind: 'held', says: 'held in memory by a:1:x' },
    { name: 'due, held back by a limit', doc: task({}), ctx: ctx({ limits: ['mailer'], instances: [{ instance: 'a:1:x', throttled: 4 }] }), kind: 'throttled', says: 'limit mailer' },
    { name: 'due, another instance\'s share', doc: task({ date: '2026-06-01T11:59:59.500Z' }), ctx: ctx({ instances: [{ instance: 'a:1:x' }, { instance: 'b:2:y' }] }), kind: 'share', says: 'the others take it over from 2026-06-01T12:00:01.500Z' },
    { name: 'due, alone', doc: task({}), ctx: ctx(), kind: 'due', says: 'about to start' },
    { name: 'run now before its date', doc: task({ date: '2026-07-01T00:00:00Z', run_now: '2026-06-01T11:59:30Z' }), ctx: ctx(), kind: 'due', says: 'due since 2026-06-01T11:59:30Z' },
    { name: 'finished', doc: task({ status: 'done' }), ctx: ctx(), kind: 'finished', says: 'done' },
    { name: 'running', doc: task({ status: 'running', lease: { instance: 'b:2:y', expires_at: '2026-06-01T12:01:00Z' } }), ctx: ctx(), kind: 'running', says: 'running on b:2:y' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.kind}`, () => {
      const why = waitingReason(c.doc, c.ctx);
      expect(why.kind).to.equal(c.kind);
      expect(why.text).to.contain(c.says);
    });
  }
});

describe('bulk actions: the write each task gets, or why it is skipped', () => {
  const cases: Array<{ action: BulkAction; status: string; writes?: Partial<TaskDoc>; skip?: string }> = [
    { action: 'retry', status: 'error', writes: { status: 'waiting', retries: 0 } },
    { action: 'retry', status: 'done', skip: 'is done, not failed' },
    { action: 'cancel', status: 'waiting', writes: { status: 'cancel' } },
    { action: 'cancel', status: 'running', writes: { status: 'cancel' } },
    { action: 'cancel', status: 'canceled', skip: 'is canceled' },
    { action: 'cancel', status: 'done', skip: 'is done' },
    { action: 'pause', status: 'scheduled', writes: { status: 'paused' } },
    { action: 'pause', status: 'paused', skip: 'is already paused' },
    { action: 'pause', status: 'error', skip: 'is error' },
    { action: 'resume', status: 'paused', writes: { status: 'waiting' } },
    { action: 'resume', status: 'waiting', skip: 'is waiting, not paused' },
    { action: 'delete', status: 'done', writes: { _deleted: true } },
    { action: 'delete', status: 'waiting', skip: 'is waiting, not finished' },
  ];
  for (const c of cases) {
    it(`${c.action} of a ${c.status} task ${c.skip ? `is skipped: ${c.skip}` : `writes ${JSON.stringify(c.writes)}`}`, () => {
      const doc = task({ status: c.status, retries: 3 });
      const plan = planBulkWrite(doc, c.action);
      if (c.skip) return expect(plan).to.deep.equal({ skip: c.skip });
      if (!('write' in plan)) throw new Error(`skipped: ${plan.skip}`);
      expect(plan.write).to.include({ _id: 't1', _rev: '1-a', ...c.writes });
      expect(doc.status, 'the document read is not changed').to.equal(c.status);
    });
  }
});

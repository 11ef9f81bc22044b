/**
 * The ready queue under limits (src/worker/timing/flow-queue.ts), with a hand-moved clock: which task
 * a free run slot gets, what waits, and what a change of the live instances does to a run
 * claimed but not started yet.
 */
import { expect } from 'chai';
import type { Clock } from '../../src/clock';
import type { LimitConfig } from '../../src/config/types';
import { FlowQueue, JOIN_SETTLE_MS } from '../../src/worker/timing/flow-queue';
import { WINDOW_MARGIN_MS } from '../../src/worker/timing/limiter';

/** A clock the test moves; timers fire only when the test says so. */
function handClock(): Clock & { nowMs: number; timers: Array<{ at: number; fn: () => void }> } {
  const clock = {
    nowMs: 0,
    timers: [] as Array<{ at: number; fn: () => void }>,
    now: () => clock.nowMs,
    setTimeout: (fn: () => void, ms: number) => {
      const timer = { at: clock.nowMs + ms, fn };
      clock.timers.push(timer);
      return timer as unknown as NodeJS.Timeout;
    },
    clearTimeout: (handle: NodeJS.Timeout) => {
      clock.timers = clock.timers.filter((timer) => timer !== (handle as unknown));
    },
  };
  return clock;
}

function queue(limits: Record<string, LimitConfig>, clock = handClock()) {
  const throttled: Array<{ id: string; limit: string }> = [];
  let woken = 0;
  const flow = new FlowQueue({
    worker: 'mailer',
    instance: 'b',
    limits,
    clock,
    claimAheadMs: 250,
    onAvailable: () => woken++,
    onThrottled: (id, limit) => throttled.push({ id, limit }),
  });
  return { flow, clock, throttled, woken: () => woken };
}

/** Pop, start and end at once every task the queue lets go now. */
function drain(flow: FlowQueue): string[] {
  const ids: string[] = [];
  for (let id = flow.pop(); id !== undefined; id = flow.pop()) {
    expect(flow.startWaitMs(id)).to.equal(0);
    flow.started(id);
    flow.release(id);
    ids.push(id);
  }
  return ids;
}

describe('flow queue: the ready queue under limits', () => {
  it('without limits: the plain ready queue (priority, then date), no permits', () => {
    const { flow } = queue({ other: { rate: { count: 1, period_ms: 1000 }, concurrency: null } });
    expect(flow.limited).to.equal(false);
    flow.push('late', { dueMs: 20, priority: 0 }, 'send');
    flow.push('urgent', { dueMs: 30, priority: 5 }, 'send');
    flow.push('early', { dueMs: 10, priority: 0 }, 'send');
    expect([flow.pop(), flow.pop(), flow.pop(), flow.pop()]).to.deep.equal(['urgent', 'early', 'late', undefined]);
    expect(flow.startWaitMs('urgent')).to.equal(0);
  });

  it('a job limit holds its own tasks back, and a task of another job behind them goes ahead', () => {
    const { flow, throttled } = queue({ 'mailer/send': { rate: { count: 2, period_ms: 1000 }, concurrency: null } });
    flow.membershipChanged(['b'], true);
    expect(flow.limitKeys).to.deep.equal(['mailer/send']);
    for (let k = 0; k < 4; k++) flow.push(`s${k}`, { dueMs: 0, priority: 9 }, 'send');
    flow.push('report', { dueMs: 5, priority: 0 }, 'report');
    expect(drain(flow)).to.deep.equal(['s0', 's1', 'report']);
    expect(flow.throttledCount).to.equal(2);
    expect(flow.size).to.equal(2);
    // Nothing had to wait yet: the two held back are told when they go.
    expect(throttled).to.deep.equal([]);
  });

  it('a throttled task is told once, with the limit that held it, when it finally goes', () => {
    const { flow, clock, throttled, woken } = queue({ mailer: { rate: { count: 1, period_ms: 1000 }, concurrency: null } });
    flow.membershipChanged(['b'], true);
    flow.push('a', { dueMs: 0 }, 'send');
    flow.push('b', { dueMs: 0 }, 'send');
    expect(drain(flow)).to.deep.equal(['a']);
    // A wake-up is armed for when the window has room, less the claim-ahead time.
    expect(clock.timers.map((timer) => timer.at)).to.deep.equal([1000 + WINDOW_MARGIN_MS - 250]);
    clock.nowMs = 1000 + WINDOW_MARGIN_MS - 250;
    const before = woken();
    clock.timers.shift()!.fn();
    expect(woken()).to.equal(before + 1);
    // Claimed ahead: it may not start before the window has room.
    const id = flow.pop()!;
    expect(id).to.equal('b');
    expect(flow.startWaitMs(id)).to.equal(250);
    clock.nowMs += 250;
    expect(flow.startWaitMs(id)).to.equal(0);
    expect(throttled).to.deep.equal([{ id: 'b', limit: 'mailer' }]);
  });

  it('a concurrency limit: room again when a run ends', () => {
    const { flow } = queue({ mailer: { rate: null, concurrency: 1 } });
    flow.membershipChanged(['b'], true);
    flow.push('a', { dueMs: 0 }, 'x');
    flow.push('b', { dueMs: 0 }, 'x');
    const first = flow.pop()!;
    expect(flow.pop()).to.equal(undefined);
    flow.started(first);
    flow.release(first);
    expect(flow.pop()).to.equal('b');
  });

  it('nothing starts before the instance is announced; an instance that joins others waits a second and a window', () => {
    const { flow, clock } = queue({ mailer: { rate: { count: 4, period_ms: 1000 }, concurrency: null } });
    flow.membershipChanged(['a', 'b'], false);
    flow.push('t', { dueMs: 0 }, 'x');
    expect(flow.pop()).to.equal(undefined);
    flow.membershipChanged(['a', 'b'], true);
    expect(flow.pop()).to.equal(undefined);
    clock.nowMs = JOIN_SETTLE_MS + 1000 + WINDOW_MARGIN_MS - 250;
    expect(flow.pop()).to.equal('t');
  });

  it('a run claimed, then the live instances change: its start waits for the smaller share (the worker hands it back past 5 s)', () => {
    const { flow, clock } = queue({ mailer: { rate: { count: 1, period_ms: 60_000 }, concurrency: null } });
    flow.membershipChanged(['b'], true);
    flow.push('t', { dueMs: 0 }, 'x');
    expect(drain(flow)).to.deep.equal(['t']);
    clock.nowMs = 60_000 + WINDOW_MARGIN_MS;
    flow.push('u', { dueMs: 0 }, 'x');
    const id = flow.pop()!;
    // Another instance sorts first: 1 per minute over two is 1 and 0, and this one has 0.
    flow.membershipChanged(['a', 'b'], true);
    expect(flow.startWaitMs(id)).to.be.above(5_000);
    flow.release(id);
  });
});

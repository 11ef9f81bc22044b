/**
 * Run slots (worker/timing/run-slots.ts): claims into free slots, claims ahead of them while
 * runs end fast, at most `concurrency` slots held, slots handed on in claim order.
 */
import { expect } from 'chai';
import FakeTimers from '@sinonjs/fake-timers';
import type { Clock } from '../../src/clock';
import type { HeldTask } from '../../src/worker/held-task';
import { AHEAD_WINDOW_MS, RunSlots, type DueTasks, type RunSlot } from '../../src/worker/timing/run-slots';

describe('run slots', () => {
  let fake: ReturnType<typeof FakeTimers.install>;
  let clock: Clock;

  beforeEach(() => {
    fake = FakeTimers.install({ now: 1_000_000, toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (handle) => clearTimeout(handle) };
  });
  afterEach(() => fake.uninstall());

  function slots(concurrency: number, maxSlotWaitMs = 5_000): RunSlots {
    return new RunSlots({ clock, graceMs: 10_000, concurrency: () => concurrency, maxSlotWaitMs, onBackupsResume: () => undefined });
  }

  /** A ready queue of `count` tasks (the last `backups` of them other instances' tasks). */
  function queue(count: number, backups = 0, prefix = 't'): DueTasks & { left(): number } {
    const tasks = Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, backup: i >= count - backups }) as unknown as HeldTask);
    return {
      nextDue: () => tasks.shift(),
      putBack: (task) => void tasks.unshift(task),
      left: () => tasks.length,
    };
  }

  /** `count` runs claimed into free slots and ended now. */
  function runAndEnd(target: RunSlots, count: number): void {
    const wave = target.fill(queue(count, 0, 'done'), true);
    expect(wave).to.have.length(count);
    for (const { slot } of wave) expect(slot.taken).to.equal(true);
    for (const { slot } of wave) target.release(slot, true);
  }

  const held = (wave: Array<{ slot: RunSlot }>): number => wave.filter(({ slot }) => slot.taken === true).length;

  it('claims only into free slots while no run has ended lately, or when told not to claim ahead', () => {
    const target = slots(3);
    const due = queue(10);
    const wave = target.fill(due, true);
    expect(wave.map(({ task }) => task.id)).to.deep.equal(['t0', 't1', 't2']);
    expect(held(wave)).to.equal(3);
    expect(target.fill(due, true)).to.have.length(0);
    expect(target.inUse).to.equal(3);

    const other = slots(3);
    runAndEnd(other, 3);
    expect(other.fill(queue(10), false), 'no claim ahead when told not to').to.have.length(3);
  });

  it('claims ahead as many as runs ended within the window, at most `concurrency`, none once the window has passed', () => {
    const target = slots(3);
    const due = queue(20);
    runAndEnd(target, 2);
    // Two runs ended just now: the three free slots, and two claims ahead that wait for a slot.
    const first = target.fill(due, true);
    expect(first).to.have.length(5);
    expect(held(first)).to.equal(3);
    expect(target.inUse, 'claims ahead hold no slot').to.equal(3);
    for (const { slot } of first.slice(0, 3)) target.release(slot, true);
    // The two claims ahead took two of the freed slots; five runs ended within the window, but
    // room ahead is capped at the concurrency (3): one free slot and three ahead.
    expect(target.inUse).to.equal(2);
    expect(target.fill(due, true)).to.have.length(4);

    const later = slots(3);
    runAndEnd(later, 3);
    fake.tick(AHEAD_WINDOW_MS + 1);
    expect(later.fill(queue(20), true), 'the runs ended too long ago').to.have.length(3);
  });

  it('never claims a backup ahead of the slots', () => {
    const target = slots(2);
    runAndEnd(target, 2);
    const due = queue(6, 4);
    // Own t0, t1 in the free slots; the backups wait for a free slot (and the backup window).
    expect(target.fill(due, true).map(({ task }) => task.id)).to.deep.equal(['t0', 't1']);
    expect(due.left()).to.equal(4);
  });

  it('hands a freed slot to the claims ahead in claim order, whatever order they become ready in; never more than `concurrency` held', async () => {
    const target = slots(2);
    runAndEnd(target, 2);
    const wave = target.fill(queue(4), true);
    expect(wave).to.have.length(4);
    const [a, b, c, d] = wave.map(({ slot }) => slot);
    const granted: string[] = [];
    void (d!.taken as Promise<boolean>).then((ok) => granted.push(`t3 ${ok}`));
    void (c!.taken as Promise<boolean>).then((ok) => granted.push(`t2 ${ok}`));
    target.release(a!, true);
    await Promise.resolve();
    expect(granted).to.deep.equal(['t2 true']);
    expect(target.inUse).to.equal(2);
    // A claim that did not run (lost, not started) frees its slot for the next in line.
    target.release(b!, false);
    await Promise.resolve();
    expect(granted).to.deep.equal(['t2 true', 't3 true']);
    expect(target.inUse).to.equal(2);
  });

  it('tells a claim ahead that no slot came within the wait, or that the slots stopped; a lost claim ahead leaves the line', async () => {
    const target = slots(1, 300);
    runAndEnd(target, 1);
    const [running, ahead] = target.fill(queue(3), true);
    expect(running!.slot.taken).to.equal(true);
    let answer: boolean | undefined;
    void (ahead!.slot.taken as Promise<boolean>).then((ok) => (answer = ok));
    await fake.tickAsync(299);
    expect(answer).to.equal(undefined);
    await fake.tickAsync(1);
    expect(answer, 'no slot within 300 ms').to.equal(false);
    target.release(ahead!.slot, false);
    expect(target.inUse, 'the claim that gave up holds no slot').to.equal(1);

    // A claim ahead whose claim write lost leaves the line: the next one gets the slot.
    const two = slots(2);
    runAndEnd(two, 2);
    const [first, , lost, next] = two.fill(queue(4, 0, 'u'), true);
    two.release(lost!.slot, false);
    two.release(first!.slot, true);
    expect(await next!.slot.taken).to.equal(true);

    const one = slots(1);
    runAndEnd(one, 1);
    const [, stopping] = one.fill(queue(2, 0, 'v'), true);
    one.stop();
    expect(await stopping!.slot.taken).to.equal(false);
  });
});

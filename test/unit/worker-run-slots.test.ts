/**
 * Run slots (worker/timing/run-slots.ts): claims into free slots, claims ahead of them while
 * runs end fast, at most `concurrency` jobs at once, claimed runs served in claim order.
 */
import { expect } from 'chai';
import FakeTimers from '@sinonjs/fake-timers';
import type { Clock } from '../../src/clock';
import type { HeldTask } from '../../src/worker/held-task';
import { AHEAD_WINDOW_MS, RunSlots, type DueTasks } from '../../src/worker/timing/run-slots';

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

  /** A ready queue of `count` tasks (`backups` of them other instances' tasks, last). */
  function queue(count: number, backups = 0): DueTasks & { left(): number } {
    const tasks = Array.from({ length: count }, (_, i) => ({ id: `t${i}`, backup: i >= count - backups }) as unknown as HeldTask);
    return {
      nextDue: () => tasks.shift(),
      putBack: (task) => void tasks.unshift(task),
      left: () => tasks.length,
    };
  }

  /** `count` runs started and ended now (their slots taken and freed). */
  function runAndEnd(target: RunSlots, count: number): void {
    const wave = target.fill(queue(count), true);
    expect(wave).to.have.length(count);
    for (let i = 0; i < count; i++) expect(target.takeSlot()).to.equal(true);
    for (let i = 0; i < count; i++) target.runEnded();
  }

  it('claims only into free slots while no run has ended lately, or when told not to claim ahead', () => {
    const target = slots(3);
    const due = queue(10);
    expect(target.fill(due, true).map((task) => task.id)).to.deep.equal(['t0', 't1', 't2']);
    expect(target.fill(due, true)).to.have.length(0);
    expect(target.inUse).to.equal(3);

    const other = slots(3);
    const more = queue(10);
    runAndEnd(other, 3);
    expect(other.fill(more, false), 'no claim ahead when told not to').to.have.length(3);
  });

  it('claims ahead as many as runs ended within the window, at most `concurrency`, none once the window has passed', () => {
    const target = slots(3);
    const due = queue(20);
    runAndEnd(target, 2);
    // Two runs ended just now: the three free slots, and two claims ahead.
    expect(target.fill(due, true)).to.have.length(5);
    expect(target.inUse, 'claims ahead use no slot').to.equal(3);
    for (let i = 0; i < 3; i++) expect(target.takeSlot()).to.equal(true);
    for (let i = 0; i < 3; i++) target.runEnded();
    // Five runs ended within the window: room ahead is capped at the concurrency (3).
    expect(target.fill(due, true)).to.have.length(3 + 3 - 2);

    const later = slots(3);
    const rest = queue(20);
    runAndEnd(later, 3);
    fake.tick(AHEAD_WINDOW_MS + 1);
    expect(later.fill(rest, true), 'the runs ended too long ago').to.have.length(3);
  });

  it('never claims a backup ahead of the slots', () => {
    const target = slots(2);
    const due = queue(6, 4);
    runAndEnd(target, 2);
    // Own t0, t1 in the free slots; the backups wait for a free slot (and the backup window).
    expect(target.fill(due, true).map((task) => task.id)).to.deep.equal(['t0', 't1']);
    expect(due.left()).to.equal(4);
  });

  it('runs at most `concurrency` jobs: a run claimed ahead gets the slot of the next run that ends, in claim order', async () => {
    const target = slots(2);
    runAndEnd(target, 2);
    const due = queue(4);
    expect(target.fill(due, true)).to.have.length(4);
    expect(target.takeSlot()).to.equal(true);
    expect(target.takeSlot()).to.equal(true);
    const third = target.takeSlot();
    const fourth = target.takeSlot();
    expect(third).to.be.instanceOf(Promise);
    const granted: string[] = [];
    void (third as Promise<boolean>).then((ok) => granted.push(`third ${ok}`));
    void (fourth as Promise<boolean>).then((ok) => granted.push(`fourth ${ok}`));
    target.runEnded();
    await Promise.resolve();
    expect(granted).to.deep.equal(['third true']);
    // A slot given back (its run did not start) goes to the next one waiting.
    target.returnSlot();
    await Promise.resolve();
    expect(granted).to.deep.equal(['third true', 'fourth true']);
  });

  it('tells a run waiting for a slot that none came within the wait, or that the slots stopped', async () => {
    const target = slots(1, 300);
    runAndEnd(target, 1);
    const due = queue(3);
    expect(target.fill(due, true)).to.have.length(2);
    expect(target.takeSlot()).to.equal(true);
    const waiting = target.takeSlot() as Promise<boolean>;
    let answer: boolean | undefined;
    void waiting.then((ok) => (answer = ok));
    await fake.tickAsync(299);
    expect(answer).to.equal(undefined);
    await fake.tickAsync(1);
    expect(answer, 'no slot within 300 ms').to.equal(false);
    // The run that gave up holds no slot: the slot of the run going on is the only one taken.
    target.claimDropped();
    target.runEnded();
    expect(target.takeSlot()).to.equal(true);

    const stopping = target.takeSlot() as Promise<boolean>;
    target.stop();
    expect(await stopping).to.equal(false);
  });
});

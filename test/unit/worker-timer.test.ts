import { expect } from 'chai';
import FakeTimers from '@sinonjs/fake-timers';
import type { Clock } from '../../src/clock';
import { SecondTimer } from '../../src/worker/timing/second-timer';

function fakeClock(startMs: number): { clock: Clock; fake: FakeTimers.Clock } {
  const fake = FakeTimers.createClock(startMs);
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms) as unknown as NodeJS.Timeout,
    clearTimeout: (handle) => fake.clearTimeout(handle as unknown as FakeTimers.TimerId),
  };
  return { clock, fake };
}

describe('per-second timer', () => {
  const start = Date.UTC(2026, 0, 1, 12, 0, 0, 250);

  it('fires each task at its exact millisecond, never before', () => {
    const { clock, fake } = fakeClock(start);
    const fired: Array<[string, number]> = [];
    const timer = new SecondTimer(clock, (ids) => ids.forEach((id) => fired.push([id, fake.now])));
    timer.add('a', start + 1_000);
    timer.add('b', start + 1_337);
    timer.add('c', start + 4_999);
    fake.tick(999);
    expect(fired).to.deep.equal([]);
    fake.tick(1);
    expect(fired).to.deep.equal([['a', start + 1_000]]);
    fake.tick(336);
    expect(fired).to.have.length(1);
    fake.tick(1);
    expect(fired[1]).to.deep.equal(['b', start + 1_337]);
    fake.tick(10_000);
    expect(fired[2]).to.deep.equal(['c', start + 4_999]);
  });

  it('runs overdue tasks at once, earliest first', () => {
    const { clock, fake } = fakeClock(start);
    const fired: string[][] = [];
    const timer = new SecondTimer(clock, (ids) => fired.push(ids));
    timer.add('late', start - 5_000);
    timer.add('later', start - 10);
    timer.add('oldest', start - 86_400_000);
    fake.tick(0);
    expect(fired).to.deep.equal([['oldest', 'late', 'later']]);
  });

  it('groups tasks by wall-clock second and ticks at second boundaries', () => {
    const { clock, fake } = fakeClock(start);
    const timer = new SecondTimer(clock, () => undefined);
    timer.add('x', start + 2_900);
    timer.add('y', start + 2_100);
    // The coarse tick waits for the start of the due second (12:00:02.000), not for 2.1 s.
    expect(fake.countTimers()).to.equal(1);
    expect(fake.next() && fake.now).to.equal(Date.UTC(2026, 0, 1, 12, 0, 2, 0));
  });

  it('never waits longer than 60 s in one timer', () => {
    const { clock, fake } = fakeClock(start);
    const fired: number[] = [];
    const timer = new SecondTimer(clock, () => fired.push(fake.now));
    timer.add('far', start + 3_600_000);
    fake.next();
    expect(fake.now - start).to.be.at.most(60_000);
    fake.runAll();
    expect(fired).to.deep.equal([start + 3_600_000]);
  });

  it('re-checks the clock when a timer fires early', () => {
    const { clock, fake } = fakeClock(start);
    let skew = 0;
    const early: Clock = { ...clock, now: () => fake.now + skew };
    const fired: number[] = [];
    const timer = new SecondTimer(early, () => fired.push(early.now()));
    timer.add('t', start + 500);
    skew = -3; // the timer fires, but the clock says 3 ms are still to go
    fake.tick(500);
    expect(fired).to.deep.equal([]);
    fake.tick(3);
    expect(fired).to.deep.equal([start + 500]);
  });

  it('forgets removed tasks and moves re-added ones', () => {
    const { clock, fake } = fakeClock(start);
    const fired: string[] = [];
    const timer = new SecondTimer(clock, (ids) => fired.push(...ids));
    timer.add('gone', start + 100);
    timer.add('moved', start + 200);
    timer.remove('gone');
    timer.add('moved', start + 5_000);
    fake.tick(1_000);
    expect(fired).to.deep.equal([]);
    fake.tick(4_000);
    expect(fired).to.deep.equal(['moved']);
    expect(timer.size).to.equal(0);
  });

  it('stops for good', () => {
    const { clock, fake } = fakeClock(start);
    const fired: string[] = [];
    const timer = new SecondTimer(clock, (ids) => fired.push(...ids));
    timer.add('a', start + 100);
    timer.stop();
    fake.tick(1_000);
    expect(fired).to.deep.equal([]);
    expect(fake.countTimers()).to.equal(0);
  });
});

/**
 * One limit as one instance applies it (src/worker/timing/limiter.ts): its share by rank, and a
 * sliding window in which it never starts more than its share, whatever the order of claims,
 * starts and share changes. Times are passed in: no clock is involved.
 */
import { expect } from 'chai';
import { Limiter, shareOf, WINDOW_MARGIN_MS } from '../../src/worker/timing/limiter';
import { mostInAnyWindow } from '../helpers/run-stats';

/** Start as many runs as the limiter lets, one attempt every `stepMs`, for `forMs`; the start times. */
function drive(limiter: Limiter, fromMs: number, forMs: number, stepMs: number): number[] {
  const starts: number[] = [];
  for (let now = fromMs; now < fromMs + forMs; now += stepMs) {
    while (limiter.availableAt(now) <= now) {
      limiter.reserve();
      if (limiter.startAvailableAt(now) > now) throw new Error('a reserved run could not start');
      limiter.started(now);
      limiter.release(true);
      starts.push(now);
    }
  }
  return starts;
}

describe('limits: one instance\'s share', () => {
  describe('shareOf: an integer share by rank among the live instances', () => {
    const cases: Array<[number, string[], number[]]> = [
      [5, ['a'], [5]],
      [5, ['a', 'b'], [3, 2]],
      [5, ['a', 'b', 'c'], [2, 2, 1]],
      [100, ['a', 'b', 'c'], [34, 33, 33]],
      [2, ['a', 'b', 'c'], [1, 1, 0]],
      [1, ['a', 'b'], [1, 0]],
    ];
    for (const [total, live, shares] of cases) {
      it(`${total} over ${live.length}: ${shares.join(', ')}`, () => {
        expect(live.map((self) => shareOf(total, live, self))).to.deep.equal(shares);
        expect(shares.reduce((a, b) => a + b, 0)).to.equal(total);
      });
    }
    it('an instance not among the live ones has none', () => expect(shareOf(5, ['a', 'b'], 'z')).to.equal(0));
  });

  it('a rate: never more than its share in any window, and its share in each period', () => {
    const limiter = new Limiter({ key: 'mailer', rate: { count: 5, periodMs: 1000 } });
    limiter.setShares(3, 0, 0, true);
    const starts = drive(limiter, 0, 10_000, 7);
    expect(mostInAnyWindow(starts, 1000 + WINDOW_MARGIN_MS - 1)).to.equal(3);
    // ~3 a second for 10 s: the margin costs one start at most.
    expect(starts.length).to.be.within(29, 30);
  });

  it('reservations count: claims made ahead of their start never exceed the share', () => {
    const limiter = new Limiter({ key: 'mailer', rate: { count: 2, periodMs: 1000 } });
    limiter.setShares(2, 0, 0, true);
    limiter.reserve();
    limiter.reserve();
    expect(limiter.availableAt(0)).to.be.above(0);
    limiter.started(0);
    limiter.started(10);
    expect(limiter.availableAt(20)).to.equal(1000 + WINDOW_MARGIN_MS);
    // A run given up before it started gives its room back.
    limiter.release(true);
    limiter.release(true);
    limiter.reserve();
    limiter.release(false);
    expect(limiter.availableAt(1000 + WINDOW_MARGIN_MS)).to.equal(1000 + WINDOW_MARGIN_MS);
  });

  it('a concurrency share: no more runs at once, room again when one ends', () => {
    const limiter = new Limiter({ key: 'mailer/send', concurrency: 3 });
    limiter.setShares(0, 2, 0, true);
    limiter.reserve();
    limiter.started(0);
    limiter.reserve();
    expect(limiter.availableAt(5)).to.equal(Infinity);
    limiter.release(true);
    expect(limiter.availableAt(5)).to.equal(5);
  });

  it('a smaller share applies at once; a larger one only once the smaller has left the window', () => {
    const limiter = new Limiter({ key: 'w', rate: { count: 4, periodMs: 1000 } });
    limiter.setShares(2, 0, 0, true);
    const before = drive(limiter, 0, 500, 10); // 2 starts at 0
    expect(before).to.deep.equal([0, 0]);
    // Another instance left at 500: this one's share rises to 4, but its 2 starts at 0 and the
    // other's share were in the same window: the larger share waits a window.
    limiter.setShares(4, 0, 500);
    expect(limiter.rateShareAt(600)).to.equal(2);
    expect(limiter.rateShareAt(500 + 1000 + WINDOW_MARGIN_MS)).to.equal(4);
    const after = drive(limiter, 500, 3000, 1);
    expect(after[0]).to.equal(1000 + WINDOW_MARGIN_MS);
    expect(after.filter((at) => at < 500 + 1000 + WINDOW_MARGIN_MS)).to.have.length(2);
    // An instance joined at 2000: down to 2 at once.
    limiter.setShares(2, 0, 2000);
    expect(limiter.rateShareAt(2000)).to.equal(2);
  });

  it('a share that starts later (an instance joining) is 0 until then, and a window after', () => {
    const limiter = new Limiter({ key: 'w', rate: { count: 5, periodMs: 1000 } });
    limiter.setShares(2, 0, 1000);
    expect(limiter.rateShareAt(0)).to.equal(0);
    expect(limiter.availableAt(0)).to.equal(1000);
    expect(limiter.rateShareAt(1500)).to.equal(0);
    expect(limiter.rateShareAt(2000 + WINDOW_MARGIN_MS)).to.equal(2);
    expect(drive(limiter, 0, 3000, 1)[0]).to.equal(2000 + WINDOW_MARGIN_MS);
  });

  it('a reserved run whose share shrank meanwhile waits at its start', () => {
    const limiter = new Limiter({ key: 'w', rate: { count: 3, periodMs: 1000 } });
    limiter.setShares(3, 0, 0, true);
    for (let k = 0; k < 3; k++) limiter.reserve();
    limiter.started(0);
    limiter.setShares(1, 0, 5);
    expect(limiter.startAvailableAt(10)).to.equal(1000 + WINDOW_MARGIN_MS);
  });

  it('two instances sharing 5/s: together never more than 5 in any second', () => {
    const live = ['a', 'b'];
    const all: number[] = [];
    for (const self of live) {
      const limiter = new Limiter({ key: 'w', rate: { count: 5, periodMs: 1000 } });
      limiter.setShares(shareOf(5, live, self), 0, 0, true);
      all.push(...drive(limiter, self === 'a' ? 0 : 333, 20_000, 13));
    }
    expect(mostInAnyWindow(all, 1000)).to.be.at.most(5);
    expect(all.length).to.be.within(95, 100);
  });
});

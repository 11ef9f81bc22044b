import { expect } from 'chai';
import { ClockSkewEstimator, SkewWarnings } from '../../src/store/clock-skew';
import { dateHeaderStaleMs } from '../../src/store/wire-observer';

/**
 * A simulated database whose clock is `offsetMs` ahead of ours (negative: behind), answering
 * a request sent at local `sentAt` after `rttMs`, stamped halfway through, to the second.
 */
function sample(offsetMs: number, sentAt: number, rttMs = 4): { dateMs: number; sentAt: number; receivedAt: number } {
  const dbTime = sentAt + rttMs / 2 + offsetMs;
  return { dateMs: Math.floor(dbTime / 1000) * 1000, sentAt, receivedAt: sentAt + rttMs };
}

describe('store: clock skew estimate from Date headers', () => {
  it('reports no skew and the local clock before any response', () => {
    const clock = new ClockSkewEstimator();
    expect(clock.skewMs()).to.equal(0);
    expect(clock.dbNow(1_700_000_000_000)).to.equal(1_700_000_000_000);
    expect(clock.sampled).to.equal(false);
  });

  const cases = [
    { name: 'clocks in step', offsetMs: 0 },
    { name: 'database 2.5 s ahead', offsetMs: 2500 },
    { name: 'database 7.321 s behind', offsetMs: -7321 },
    { name: 'database 999 ms ahead', offsetMs: 999 },
  ];
  for (const c of cases) {
    it(`narrows to within 25 ms over responses spread across a second: ${c.name}`, () => {
      const clock = new ClockSkewEstimator();
      const start = 1_700_000_000_123;
      // responses 37 ms apart land at every phase of the database's second
      for (let i = 0; i < 60; i++) clock.addSample(sample(c.offsetMs, start + i * 37));
      expect(Math.abs(clock.skewMs() - -c.offsetMs)).to.be.at.most(25);
      expect(clock.uncertaintyMs).to.be.at.most(50);
      expect(Math.abs(clock.dbNow(start + 10_000) - (start + 10_000 + c.offsetMs))).to.be.at.most(25);
    });
  }

  it("takes a CouchDB's Date header, stamped from a date refreshed once a second, for clocks in step", () => {
    // Apache CouchDB stamps a response with the date its HTTP layer last refreshed: up to a second
    // older than the response. Read as plain truncation, such headers put a synchronised database
    // up to a second behind (the CouchDB suite once estimated 1004 ms).
    const start = 1_700_000_000_123;
    const stamped = (sentAt: number, refreshLagMs: number) => ({ ...sample(0, sentAt), dateMs: Math.floor((sentAt + 2 - refreshLagMs) / 1000) * 1000 });
    const couch = new ClockSkewEstimator();
    const plain = new ClockSkewEstimator();
    for (let i = 0; i < 60; i++) {
      const s = stamped(start + i * 37, (i * 331) % 1000);
      couch.addSample({ ...s, staleMs: dateHeaderStaleMs('CouchDB/3.4.3 (Erlang OTP/25)') });
      plain.addSample(s);
    }
    expect(couch.skewMs()).to.equal(0);
    expect(Math.abs(plain.skewMs()), 'read as truncation only, the same headers make a skew up').to.be.above(0);
    expect(dateHeaderStaleMs('Express')).to.equal(0);
    expect(dateHeaderStaleMs(undefined)).to.equal(0);
  });

  it('from CouchDB headers, still finds a clock seconds away, to within half a second', () => {
    const start = 1_700_000_000_123;
    for (const offsetMs of [5000, -7321]) {
      const clock = new ClockSkewEstimator();
      for (let i = 0; i < 60; i++) {
        const s = sample(offsetMs, start + i * 37);
        clock.addSample({ ...s, dateMs: s.dateMs - (i % 2) * 1000, staleMs: 1000 });
      }
      expect(Math.abs(clock.skewMs() - -offsetMs), `offset ${offsetMs}`).to.be.at.most(525);
    }
  });

  it('after one response, takes clocks that may agree as agreeing, even after a slow round trip', () => {
    for (const rttMs of [10, 1200]) {
      for (let phase = 0; phase < 1000; phase += 97) {
        const clock = new ClockSkewEstimator();
        clock.addSample(sample(0, 1_700_000_000_000 + phase, rttMs));
        expect(clock.skewMs(), `round trip ${rttMs} ms, phase ${phase}`).to.equal(0);
      }
    }
  });

  it('is never more than a second plus the round trip off after one response', () => {
    for (const offsetMs of [400, -400, 700, -700, 3000, -3000]) {
      for (let phase = 0; phase < 1000; phase += 97) {
        const clock = new ClockSkewEstimator();
        clock.addSample(sample(offsetMs, 1_700_000_000_000 + phase, 10));
        const errorMs = Math.abs(clock.skewMs() + offsetMs);
        expect(errorMs, `offset ${offsetMs} phase ${phase}`).to.be.at.most(1010);
        // The clocks cannot be told apart beyond 510 ms only when agreeing is still possible.
        if (clock.skewMs() !== 0) expect(errorMs, `offset ${offsetMs} phase ${phase}`).to.be.at.most(510);
      }
    }
  });

  it('starts over when a clock is stepped and the new responses contradict the old ones', () => {
    const clock = new ClockSkewEstimator();
    for (let i = 0; i < 40; i++) clock.addSample(sample(0, 1_700_000_000_000 + i * 37));
    expect(Math.abs(clock.skewMs())).to.be.at.most(25);
    // the local clock jumps 5 s ahead (the database's does not)
    for (let i = 0; i < 40; i++) clock.addSample(sample(-5000, 1_700_000_100_000 + i * 37));
    expect(Math.abs(clock.skewMs() - 5000)).to.be.at.most(25);
  });
});

describe('store: clock skew warnings', () => {
  it('warns once when the skew passes 1 s, again only when it moves by more than 1 s', () => {
    const warnings = new SkewWarnings();
    expect(warnings.check(300)).to.equal(undefined);
    const first = warnings.check(1500);
    expect(first?.level).to.equal('warn');
    expect(first?.message).to.match(/1500 ms ahead of the database's/);
    expect(warnings.check(1600)).to.equal(undefined);
    expect(warnings.check(2400)).to.equal(undefined);
    expect(warnings.check(2600)?.level).to.equal('warn');
    expect(warnings.check(900)?.level).to.equal('info');
    expect(warnings.check(800)).to.equal(undefined);
    expect(warnings.check(-1800)?.message).to.match(/1800 ms behind the database's/);
  });
});

/**
 * Which instances are alive (worker/membership.ts): by when their heartbeat was seen to move on,
 * on this instance's clock, never by a date a document claims (issue 19, row 4).
 */
import { expect } from 'chai';
import { HEARTBEAT_FUTURE_TOLERANCE_MS, MAX_HEARTBEAT_INTERVAL_MS, STALE_AFTER_BEATS } from '../../src/store/schema';
import { Membership } from '../../src/worker/peers/membership';

const T0 = Date.parse('2026-12-07T12:00:00Z');
const INTERVAL = 10_000;
const WINDOW = STALE_AFTER_BEATS * INTERVAL;

describe('membership: live instances by heartbeats seen', () => {
  const cases: Array<{ name: string; beats: Array<{ at: number; heartbeatMs: number; intervalMs?: number }>; checkAt: number; live: boolean }> = [
    { name: 'an instance beating on time', beats: [{ at: T0, heartbeatMs: T0 }], checkAt: T0 + WINDOW - 1, live: true },
    { name: 'one that went silent for three intervals', beats: [{ at: T0, heartbeatMs: T0 }], checkAt: T0 + WINDOW, live: false },
    { name: 'one beating every interval, long after the first beat', beats: [0, 1, 2, 3, 4, 5].map((k) => ({ at: T0 + k * INTERVAL, heartbeatMs: T0 + k * INTERVAL })), checkAt: T0 + 5 * INTERVAL + WINDOW - 1, live: true },
    { name: 'a document dated 2099: never counted', beats: [{ at: T0, heartbeatMs: Date.parse('2099-01-01T00:00:00Z') }], checkAt: T0 + 1, live: false },
    { name: 'a date just within the tolerance, written once: alive three intervals from when it was seen, no longer', beats: [{ at: T0, heartbeatMs: T0 + HEARTBEAT_FUTURE_TOLERANCE_MS }], checkAt: T0 + WINDOW, live: false },
    { name: 'the same document written again unchanged: no sign of life', beats: [{ at: T0, heartbeatMs: T0 }, { at: T0 + 25_000, heartbeatMs: T0 }], checkAt: T0 + WINDOW, live: false },
    { name: 'an old document read at start (last beat an hour ago)', beats: [{ at: T0, heartbeatMs: T0 - 3_600_000 }], checkAt: T0, live: false },
    { name: 'a document claiming a year-long interval counts as one of MAX_HEARTBEAT_INTERVAL_MS', beats: [{ at: T0, heartbeatMs: T0, intervalMs: 365 * 86_400_000 }], checkAt: T0 + STALE_AFTER_BEATS * MAX_HEARTBEAT_INTERVAL_MS, live: false },
  ];
  for (const c of cases) {
    it(`${c.live ? 'live' : 'not live'}: ${c.name}`, () => {
      const membership = new Membership('self');
      for (const beat of c.beats) membership.observe({ instance: 'other', heartbeatMs: beat.heartbeatMs, intervalMs: beat.intervalMs ?? INTERVAL }, beat.at);
      membership.refresh(c.checkAt);
      expect(membership.live.includes('other')).to.equal(c.live);
      expect(membership.live).to.include('self');
    });
  }

  it('says which heartbeats it counted, which changed nothing, and which claim the future', () => {
    const membership = new Membership('self');
    expect(membership.observe({ instance: 'a', heartbeatMs: T0, intervalMs: INTERVAL }, T0)).to.equal('counted');
    expect(membership.observe({ instance: 'a', heartbeatMs: T0, intervalMs: INTERVAL }, T0 + 5)).to.equal('unchanged');
    expect(membership.observe({ instance: 'a', heartbeatMs: T0 - 1, intervalMs: INTERVAL }, T0 + 6)).to.equal('unchanged');
    expect(membership.observe({ instance: 'a', heartbeatMs: T0 + INTERVAL, intervalMs: INTERVAL }, T0 + INTERVAL)).to.equal('counted');
    expect(membership.observe({ instance: 'f', heartbeatMs: T0 + HEARTBEAT_FUTURE_TOLERANCE_MS + 1, intervalMs: INTERVAL }, T0)).to.equal('future');
    expect(membership.observe({ instance: 'a', gone: true }, T0)).to.equal('gone');
  });

  it('a suspect (its run lease expired) comes back only with a heartbeat seen after the suspicion, whatever date it claims', () => {
    const membership = new Membership('self');
    membership.observe({ instance: 'a', heartbeatMs: T0, intervalMs: INTERVAL }, T0);
    membership.refresh(T0);
    expect(membership.suspect('a', T0 + 1_000)).to.equal(true);
    expect(membership.live).to.deep.equal(['self']);
    membership.refresh(T0 + 2_000);
    expect(membership.live).to.deep.equal(['self']);
    membership.observe({ instance: 'a', heartbeatMs: T0 + 3_000, intervalMs: INTERVAL }, T0 + 3_000);
    expect(membership.refresh(T0 + 3_000)).to.equal(true);
    expect(membership.live).to.deep.equal(['a', 'self']);
  });
});

import { expect } from 'chai';
import { addVector, countRunEnd, countStart, emptyVector, figuresOf, quantile, runEndOf, LATENESS_BOUNDS_MS, VECTOR_LENGTH } from '../../src/stats/run-figures';
import { grouped, sparkline } from '../../src/stats/sparkline';

describe('run figures: vectors the database adds up', () => {
  describe('how a finished run counts', () => {
    const cases: Array<{ finished: { status: string; outcome?: string; error?: string }; end: string | undefined }> = [
      { finished: { status: 'done', outcome: 'success' }, end: 'done' },
      { finished: { status: 'waiting', outcome: 'success' }, end: 'done' },
      { finished: { status: 'waiting', outcome: 'later' }, end: 'done' },
      { finished: { status: 'error', outcome: 'failure', error: 'x' }, end: 'failed' },
      { finished: { status: 'waiting', outcome: 'failure', error: 'x' }, end: 'retried' },
      { finished: { status: 'waiting', outcome: 'retry', error: 'x' }, end: 'retried' },
      { finished: { status: 'canceled', outcome: 'canceled' }, end: undefined },
      { finished: { status: 'waiting', outcome: 'release' }, end: undefined },
      { finished: { status: 'error', error: 'x' }, end: 'failed' },
      { finished: { status: 'waiting', error: 'x' }, end: 'retried' },
      { finished: { status: 'done' }, end: 'done' },
    ];
    for (const c of cases) {
      it(`${c.finished.status} after ${c.finished.outcome ?? 'an older worker'} counts as ${c.end ?? 'nothing'}`, () => {
        expect(runEndOf(c.finished)).to.equal(c.end);
      });
    }
  });

  it('counts runs and lateness, and two vectors add up to the sum of their figures', () => {
    const a = emptyVector();
    const b = emptyVector();
    countRunEnd(a, 'done');
    countRunEnd(a, 'failed');
    countRunEnd(b, 'done');
    countRunEnd(b, 'retried');
    for (const late of [3, 3, 3, 700]) countStart(a, late);
    countStart(b, 40_000);
    const sum = addVector(addVector(emptyVector(), a), b);
    expect(sum).to.have.length(VECTOR_LENGTH);
    expect(figuresOf(sum)).to.deep.include({ done: 2, failed: 1, retried: 1, started: 5 });
  });

  it('reads p50 and p99 from the summed histogram within a bucket, and none when nothing started', () => {
    const v = emptyVector();
    for (let i = 0; i < 99; i++) countStart(v, 7); // bucket (5, 10]
    countStart(v, 2000); // bucket (1000, 2500]
    const figures = figuresOf(v);
    expect(figures.lateP50).to.be.within(5, 10);
    expect(figures.lateP99).to.be.within(5, 10);
    countStart(v, 2000);
    countStart(v, 2000);
    expect(figuresOf(v).lateP99).to.be.within(1000, 2500);
    expect(figuresOf(emptyVector()).lateP50).to.equal(null);
    expect(quantile([0, 0, 0], 0, 0.5)).to.equal(null);
  });

  it('puts a lateness past the last bound in the open bucket, answered by that bound', () => {
    const v = emptyVector();
    countStart(v, 10 * 3_600_000);
    expect(figuresOf(v).lateP99).to.equal(LATENESS_BOUNDS_MS[LATENESS_BOUNDS_MS.length - 1]);
  });

  it('adds only numbers from what the database returns', () => {
    const v = addVector(emptyVector(), [1, 'x', null, 2] as unknown[]);
    expect(v.slice(0, 4)).to.deep.equal([1, 0, 0, 2]);
  });

  it('draws a sparkline scaled to its maximum, blank for zero, and groups columns', () => {
    expect(sparkline([0, 1, 2, 4, 8])).to.equal(' ▂▃▅█');
    expect(sparkline([0, 0])).to.equal('  ');
    expect(grouped([1, 2, 3, 4, 5], 2)).to.deep.equal([3, 7, 5]);
  });
});

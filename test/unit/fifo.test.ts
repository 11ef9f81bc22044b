import { expect } from 'chai';
import { Fifo } from '../../src/fifo';

describe('Fifo', () => {
  it('hands items back in the order they came, through thousands taken and added in turns', () => {
    const queue = new Fifo<number>();
    let pushed = 0;
    let taken = 0;
    // Waves of 700 in, 500 out: the head passes the point where the array is cut several times.
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 700; i++) queue.push(pushed++);
      for (let i = 0; i < 500; i++) {
        expect(queue.peek()).to.equal(taken);
        expect(queue.shift()).to.equal(taken++);
      }
      expect(queue.size).to.equal(pushed - taken);
    }
    while (queue.size > 0) expect(queue.shift()).to.equal(taken++);
    expect(taken).to.equal(pushed);
    expect(queue.peek()).to.equal(undefined);
    expect(queue.shift()).to.equal(undefined);
    queue.push(-1);
    expect([queue.size, queue.shift(), queue.size]).to.deep.equal([1, -1, 0]);
  });
});

/**
 * isAlive(pid): what `after db status|stop`, `after stop` and the tests rely on to know a
 * process is gone, including the zombie a detached process leaves until it is reaped.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { isAlive } from '../../src/process';
import { waitFor } from '../helpers/index';

describe('isAlive', () => {
  let parent: ChildProcess | undefined;

  afterEach(() => {
    if (parent?.exitCode === null) parent.kill('SIGKILL');
  });

  it('is true for a running process and for this one', () => {
    expect(isAlive(process.pid)).to.equal(true);
    parent = spawn('sleep', ['30'], { stdio: 'ignore' });
    expect(isAlive(parent.pid!)).to.equal(true);
  });

  it('is false for a zombie (exited, not yet reaped) and for a pid that is gone', async () => {
    // `sleep 0` exits at once; its parent, exec'd into `sleep 30`, never reaps it.
    parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const zombie = await new Promise<number>((resolve) => parent!.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    expect(zombie).to.be.above(0);
    await waitFor(async () => !isAlive(zombie) || undefined, { timeoutMs: 5_000, what: `pid ${zombie} to be a zombie` });
    // Still in the process table as a zombie: kill(pid, 0) succeeds.
    expect(() => process.kill(zombie, 0)).not.to.throw();

    parent.kill('SIGKILL');
    await waitFor(async () => !isAlive(parent!.pid!) || undefined, { timeoutMs: 5_000, what: 'the parent to exit' });
    expect(isAlive(parent.pid!)).to.equal(false);
  });
});

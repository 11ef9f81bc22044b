/**
 * Root hooks (registered in .mocharc.json "require"): a test that leaves a CLI child process
 * running fails, and the child is killed so the next test starts clean; a test file that
 * forgets to destroy its database fails the run, and the database is destroyed.
 */
import type { Context } from 'mocha';
import { assertNoChildrenLeft } from './cli';
import { destroyLeftoverDbs } from './db';

export const mochaHooks = {
  async afterEach(this: Context): Promise<void> {
    try {
      await assertNoChildrenLeft();
    } catch (err) {
      // Hook#error fails the current test without aborting the rest of the run.
      (this.test as unknown as { error(err: unknown): void }).error(err);
    }
  },
  async afterAll(): Promise<void> {
    const left = await destroyLeftoverDbs();
    if (left.length > 0) throw new Error(`test databases left running (now destroyed): ${left.join(', ')}`);
  },
};

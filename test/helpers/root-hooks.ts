/**
 * Root hooks (registered in .mocharc.json "require"): what a test started through the helpers
 * (workers, its own database) is ended once the test is over; a test that leaves any other CLI
 * child process running fails, and the child is killed so the next test starts clean; a test
 * file that forgets to destroy its database fails the run, and the database is destroyed.
 */
import type { Context } from 'mocha';
import { assertNoChildrenLeft } from './cli';
import { destroyLeftoverDbs } from './db';
import { endTestScope } from './test-scope';

export const mochaHooks = {
  async afterEach(this: Context): Promise<void> {
    const errors: unknown[] = [];
    for (const check of [endTestScope, assertNoChildrenLeft]) await check().catch((err: unknown) => errors.push(err));
    if (errors.length === 0) return;
    const error = errors.length === 1 ? errors[0] : new Error(errors.map((err) => (err instanceof Error ? err.message : String(err))).join('; '));
    // Hook#error fails the current test without aborting the rest of the run.
    (this.test as unknown as { error(err: unknown): void }).error(error);
  },
  async afterAll(): Promise<void> {
    await endTestScope();
    const left = await destroyLeftoverDbs();
    if (left.length > 0) throw new Error(`test databases left running (now destroyed): ${left.join(', ')}`);
  },
};

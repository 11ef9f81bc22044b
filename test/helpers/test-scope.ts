/**
 * What a test started and does not want to stop by hand: a helper registers how to end it
 * (`afterThisTest`), and the root `afterEach` hook (root-hooks.ts) ends it all once the test
 * is over, last started first, like `defer`: the workers before the database they use.
 *
 * Per test, not per file: a worker started in a `beforeEach` or in the test itself ends with
 * that test. What a whole `describe` shares (its database) has hooks of its own (suite-db.ts).
 */
type Cleanup = () => unknown;

const cleanups: Cleanup[] = [];

/** Run `cleanup` once the current test is over (passed, failed or timed out). */
export function afterThisTest(cleanup: Cleanup): void {
  cleanups.push(cleanup);
}

/** For the root `afterEach` hook: every cleanup, last registered first; throws the first error once all ran. */
export async function endTestScope(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

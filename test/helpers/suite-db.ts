/**
 * The database of a test file, without the hooks around it:
 *
 *   describe('worker', function () {
 *     const db = useSuiteDb({ config: { worker: { timeout_ms: 1500 } } });
 *     it('...', async () => { await postTask(db, {...}); });
 *   });
 *
 * and a database for one test only (`startTestDb`), destroyed when that test ends.
 */
import { startDb, type StartDbOptions, type TestDb } from './db';
import { afterThisTest } from './test-scope';

/**
 * Registers the `before`/`after` hooks of the calling `describe`: one TestDb started before its
 * first test and destroyed after its last. The TestDb is returned at once, to be used in tests
 * and hooks (it exists from the `before` hook on; using it earlier throws).
 *
 * Hooks of one kind run in the order they were registered: a `before` that needs the database
 * comes after this call; an `after` that must run while the database is still there (closing
 * a dashboard that follows it) comes before it. A `before` placed earlier that calls
 * `this.skip()` skips the suite without starting anything.
 */
export function useSuiteDb(options: StartDbOptions = {}): TestDb {
  let current: TestDb | undefined;
  before(async function () {
    current = await startDb(options);
  });
  after(async function () {
    const db = current;
    current = undefined;
    await db?.destroy();
  });
  return lateBound(() => current, 'useSuiteDb(): the database is started in the before hook; use it in a test or a hook');
}

/** A database for the current test only (`startDb` options): destroyed once the test ends, after the workers it started. */
export async function startTestDb(options: StartDbOptions = {}): Promise<TestDb> {
  const db = await startDb(options);
  afterThisTest(() => db.destroy());
  return db;
}

/**
 * An object that stands for the one `current()` returns when it is used: mocha runs a
 * `describe` body (where the test file names its database) before any hook has started it.
 */
function lateBound<T extends object>(current: () => T | undefined, notYet: string): T {
  const target = (): T => {
    const value = current();
    if (value === undefined) throw new Error(notYet);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      // Not a promise: `await db` or returning it from an async function must not call target().
      if (key === 'then') return undefined;
      const object = target();
      const value: unknown = Reflect.get(object, key);
      return typeof value === 'function' ? value.bind(object) : value;
    },
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor(_, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(target(), key);
      // The proxy's own target is an empty object: every key it reports must be configurable.
      return descriptor && { ...descriptor, configurable: true };
    },
  });
}

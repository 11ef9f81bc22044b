/** The integration test harness: `import { startDb, runCli, waitForStatus } from '../helpers'`. */
export { startDb, type StartDbOptions, type TestDb } from './db';
export { runCli, spawnCli, assertNoChildrenLeft, AFTER_BIN, REPO_ROOT, type ChildHandle, type CliOptions, type CliResult } from './cli';
export { waitFor, waitForStatus, type WaitOptions } from './wait';
export { freePort } from './ports';

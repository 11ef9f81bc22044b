/**
 * The integration test harness: `import { useSuiteDb, startWorker, postTask, waitForStatus } from '../helpers'`.
 *
 * - a database: useSuiteDb() for a `describe`, startTestDb() for one test, startDb() by hand;
 * - worker processes: startWorker(), stopped when the test ends; readRecords() of the `records` job;
 * - tasks over HTTP: postTask(), postTasks(), getTask(), updateTask(), runTask();
 * - waiting for a condition: waitFor(), waitForStatus(), waitForDoc(), waitForAll();
 * - the CLI: runCli(), spawnCli() (a child the test must end itself), startCli() (ended with the test);
 * - TestProxy (test/helpers/proxy.ts): a proxy that counts requests and stages outages.
 */
export { startDb, type StartDbOptions, type TestDb } from './db';
export { startTestDb, useSuiteDb } from './suite-db';
export { runCli, spawnCli, assertNoChildrenLeft, AFTER_BIN, REPO_ROOT, type ChildHandle, type CliOptions, type CliResult } from './cli';
export { FIXTURE_JOBS, readRecords, startCli, startWorker, stopWorkers, testRecordFile, type StartWorkerOptions, type WorkerProcess } from './workers';
export { getTask, iso, postTask, postTasks, runTask, updateTask } from './tasks';
export { waitFor, waitForAll, waitForDoc, waitForStatus, type WaitOptions } from './wait';
export { isAlive, pm2DaemonPid, sessionOf, stopPm2Daemon } from './processes';
export { TestProxy } from './proxy';
export { freePort } from './ports';

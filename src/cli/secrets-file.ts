/**
 * The secrets file of a background worker: how its database URL (which may carry a password)
 * and database name reach it without pm2 ever seeing them, and without a file that a program
 * a job runs could read while the worker works.
 *
 * `after start <name> -b` writes `$AFTER_HOME/secrets/<name>.json` (0600) and gives the worker
 * only its path. The worker reads it once at start and removes it, keeping the values in
 * memory. Because pm2 restarts a worker that exits, the worker writes the file back whenever it
 * exits through a path that runs JavaScript (a signal, an uncaught exception, a normal exit);
 * `after stop` removes it for good. After a SIGKILL nothing could be written back: the restarted
 * worker logs one line asking for `after start <name> -b` again and waits for the file, polling,
 * rather than crash-looping; while it waits, a marker file (`<name>.waiting`, no secret in it)
 * tells that command to hand the file to the running worker instead of refusing to start it twice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSecretsFile, SECRET_ENV_KEYS, type SecretEnvValues } from '../config/secret-env';
import type { Logger } from '../log';

/** How often a worker waiting for its file, or holding its values, looks for a new file. */
const POLL_MS = 1000;

export function secretsFile(home: string, worker: string): string {
  return path.join(home, 'secrets', `${worker}.json`);
}

/** Present while a background worker waits for its secrets file. */
export function waitingMarker(secrets: string): string {
  return secrets.replace(/\.json$/, '') + '.waiting';
}

/**
 * What a background worker needs from this command's environment: the values of
 * SECRET_ENV_KEYS, directly or through this command's own AFTER_SECRETS_FILE (the environment
 * wins). Empty when the configuration file alone says where the database is.
 */
export function secretsToHand(env: NodeJS.ProcessEnv): SecretEnvValues {
  const inherited = env.AFTER_SECRETS_FILE ? readSecretsFile(env.AFTER_SECRETS_FILE) : {};
  const secrets: SecretEnvValues = {};
  for (const key of SECRET_ENV_KEYS) {
    const value = env[key] || inherited[key];
    if (value) secrets[key] = value;
  }
  return secrets;
}

/**
 * Writes `env`'s secrets (see secretsToHand) where only this user can read them, returning
 * the file. pm2 shows an app's environment to anyone who runs `pm2 show`; the worker gets only
 * this file's path.
 */
export function writeSecrets(home: string, worker: string, env: NodeJS.ProcessEnv): string {
  const file = secretsFile(home, worker);
  writeSecretsFile(file, secretsToHand(env));
  return file;
}

/**
 * Created 0600 in a 0700 folder (never readable by others, not even for a moment), complete
 * or not at all: written beside and renamed, so a worker polling for it never reads half of it.
 */
function writeSecretsFile(file: string, secrets: SecretEnvValues): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const partial = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(partial, `${JSON.stringify(secrets)}\n`, { mode: 0o600 });
  fs.chmodSync(partial, 0o600);
  fs.renameSync(partial, file);
}

/** Reads and removes the file; undefined when there is none. */
function takeFile(file: string): SecretEnvValues | undefined {
  if (!fs.existsSync(file)) return undefined;
  const values = readSecretsFile(file);
  fs.rmSync(file, { force: true });
  return values;
}

export interface SecretsCustody {
  readonly values: SecretEnvValues;
  /** Give up custody: the file is no longer written back at exit. */
  release(): void;
}

/**
 * For a background worker at start: takes its secrets file (read, removed), waiting for it
 * when it is missing, and writes it back when the process exits. Resolves with the values, or
 * with undefined when `stopRequested` settles while waiting.
 */
export async function takeSecretsIntoCustody(
  file: string,
  options: { worker: string; log: Logger; stopRequested: Promise<unknown> },
): Promise<SecretsCustody | undefined> {
  let values = takeFile(file);
  if (values === undefined) values = await waitForFile(file, options);
  if (values === undefined) return undefined;
  const held = values;
  const writeBack = (): void => {
    // A file that is there already is newer (handed over while we were exiting): keep it.
    if (fs.existsSync(file)) return;
    try {
      writeSecretsFile(file, held);
    } catch {
      // nothing more can be done while exiting; the next start will ask for them
    }
  };
  process.on('exit', writeBack);
  return { values: held, release: () => void process.off('exit', writeBack) };
}

async function waitForFile(
  file: string,
  options: { worker: string; log: Logger; stopRequested: Promise<unknown> },
): Promise<SecretEnvValues | undefined> {
  options.log.warn(
    `worker ${options.worker} has no credentials: ${file} is missing (it is removed while the worker runs and written back when it exits, ` +
      `but the last one was killed before it could); run 'after start ${options.worker} -b' again to hand it its credentials`,
  );
  const marker = waitingMarker(file);
  fs.mkdirSync(path.dirname(marker), { recursive: true, mode: 0o700 });
  fs.writeFileSync(marker, `${process.pid}\n`, { mode: 0o600 });
  const removeMarker = (): void => fs.rmSync(marker, { force: true });
  process.on('exit', removeMarker);
  let stopped = false;
  void options.stopRequested.then(() => (stopped = true));
  let values: SecretEnvValues | undefined;
  try {
    while (values === undefined && !stopped) {
      await Promise.race([new Promise((resolve) => setTimeout(resolve, POLL_MS)), options.stopRequested]);
      if (!stopped) values = takeFile(file);
    }
  } finally {
    removeMarker();
    process.off('exit', removeMarker);
  }
  if (values !== undefined) options.log.info(`worker ${options.worker} received its credentials`);
  return values;
}

/** Waits (up to `timeoutMs`) for a running worker to take a file handed to it. */
export async function waitForSecretsTaken(file: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (fs.existsSync(file)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

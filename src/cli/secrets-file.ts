/**
 * Credentials handed to a background worker: which ones `after start <name> -b` hands over
 * (secretsToHand; they travel through a socket, credential-socket.ts), and the secrets file an
 * After before issue 19 handed them in, `$AFTER_HOME/secrets/<name>.json`, which a worker it
 * started (pm2 still has AFTER_SECRETS_FILE in its environment) takes once and never writes
 * back: that file was the leak of issue 19, row 2 (the worker wrote it back as it exited, for
 * pm2 to restart it, and a program of a run that signalled the worker could read it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSecretsFile, SECRET_ENV_KEYS, type SecretEnvValues } from '../config/secret-env';
import type { Logger } from '../log';

export function secretsFile(home: string, worker: string): string {
  return path.join(home, 'secrets', `${worker}.json`);
}

/** Where an older After marked a background worker waiting for its secrets file. */
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

/** Reads and removes the file; undefined when there is none. */
function takeFile(file: string): SecretEnvValues | undefined {
  if (!fs.existsSync(file)) return undefined;
  const values = readSecretsFile(file);
  fs.rmSync(file, { force: true });
  return values;
}

/**
 * For a worker's process an older After started under pm2: takes its secrets file (read,
 * removed) and never writes it back. Without one (it was already taken), says how to hand the
 * credentials over the new way and waits for a stop, rather than crash-loop under pm2.
 */
export async function takeSecrets(
  file: string,
  options: { worker: string; log: Logger; stopRequested: Promise<unknown> },
): Promise<SecretEnvValues | undefined> {
  const values = takeFile(file);
  if (values !== undefined) return values;
  options.log.warn(
    `worker ${options.worker} was started by an older After, which handed credentials over in ${file}, and has none now: ` +
      `run 'after stop ${options.worker}' and 'after start ${options.worker} -b' to hand them over through a socket`,
  );
  await options.stopRequested;
  return undefined;
}

/**
 * Credentials in the environment: which variables may carry one, and the secrets file
 * (AFTER_SECRETS_FILE) a background worker reads them from instead of its environment.
 */
import * as fs from 'node:fs';
import { ConfigError } from '../errors';
import { parseJsonFile } from './json-file';

/**
 * The environment variables that may carry a credential (a URL with a password) or say which
 * database to use. They never reach a program a job runs, pm2's process list, or the
 * environment of a worker process: a background worker gets them through its secrets file
 * (AFTER_SECRETS_FILE), a foreground worker from its launcher through a pipe.
 */
export const SECRET_ENV_KEYS = ['AFTER_COUCHDB_URL', 'AFTER_DB'] as const;

/** Values of SECRET_ENV_KEYS, by key. */
export type SecretEnvValues = Partial<Record<(typeof SECRET_ENV_KEYS)[number], string>>;

/** The values of SECRET_ENV_KEYS a secrets file holds: a JSON object of those keys. */
export function readSecretsFile(file: string): SecretEnvValues {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read AFTER_SECRETS_FILE ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const parsed = parseJsonFile(text, `AFTER_SECRETS_FILE ${file}`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`AFTER_SECRETS_FILE ${file} must hold a JSON object`);
  }
  const found: SecretEnvValues = {};
  for (const key of SECRET_ENV_KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string' && value) found[key] = value;
  }
  return found;
}

/** The environment with what AFTER_SECRETS_FILE holds merged in (the file wins). */
export function withSecretsFile(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const file = env.AFTER_SECRETS_FILE;
  if (!file) return env;
  return { ...env, ...readSecretsFile(file) };
}

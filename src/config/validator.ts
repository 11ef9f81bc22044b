/**
 * Checks of config values, each failing with one ConfigError line that names the file and the
 * field and never quotes a secret (a credential setting is described by its type only).
 */
import { ConfigError } from '../errors';

/** setTimeout's limit: a longer timeout would fire at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

export class Validator {
  constructor(private readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(`config ${this.file}: ${field || '(top level)'} ${problem}`);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'must be an object');
    return value as Record<string, unknown>;
  }

  onlyKeys(obj: Record<string, unknown>, field: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(field ? `${field}.${key}` : key, `is not a known setting (known: ${allowed.filter((k) => !k.startsWith('$') && k !== 'comment').join(', ')})`);
      }
    }
  }

  string(value: unknown, field: string, fallback: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(value)}`);
    return value;
  }

  /** A setting that may hold a credential (a password, a user name, a URL with both): a bad value is named by its type, never shown. */
  secretString(value: unknown, field: string, fallback: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${describeType(value)}`);
    return value;
  }

  /** An array of strings, each accepted by `valid`; `what` says what one must look like. */
  stringList(value: unknown, field: string, valid: (item: string) => boolean, what: string): readonly string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(field, `must be an array of strings, got ${JSON.stringify(value)}`);
    return value.map((item: unknown, i) => {
      if (typeof item !== 'string' || !valid(item)) this.fail(`${field}[${i}]`, `must be ${what}, got ${JSON.stringify(item)}`);
      return item;
    });
  }

  boolean(value: unknown, field: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as T;
  }

  /** A timeout: milliseconds, or units `1h`, `30m`, `90s`, `500ms`, `1d` (combined: `1h30m`). */
  timeout(value: unknown, field: string): number {
    const expected = 'must be a number of milliseconds or a duration such as "1h", "30m", "90s", "1h30m"';
    let ms: number;
    if (typeof value === 'number') ms = value;
    else if (typeof value === 'string' && /^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(value.trim())) {
      const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
      ms = 0;
      for (const [, amount, , unit] of value.trim().matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(amount) * unitMs[unit!]!;
      ms = Math.round(ms);
    } else this.fail(field, `${expected}, got ${JSON.stringify(value)}`);
    if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
      this.fail(field, `must be from 1 ms to ${MAX_TIMEOUT_MS} ms (about 24 days), got ${JSON.stringify(value)}`);
    }
    return ms;
  }

  integer(value: unknown, field: string, fallback: number, min: number, max: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  url(value: string, field: string): void {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      this.fail(field, 'must be an http(s) URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') this.fail(field, 'must be an http(s) URL');
  }

  dbName(value: string, field: string): void {
    // CouchDB's own rule for database names.
    if (!/^[a-z][a-z0-9_$()+/-]*$/.test(value)) {
      this.fail(field, `must be a CouchDB database name (lowercase letter first, then a-z 0-9 _$()+-/), got ${JSON.stringify(value)}`);
    }
  }
}

/** `a number`, `an object`...: what a value is, without what it says. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

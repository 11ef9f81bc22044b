/**
 * Option value parsers for commander. A bad value becomes commander's own one-line error
 * ("option '--port <n>' argument 'x' is invalid. ..."), printed as `after: ...`.
 */
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';

export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    }
    return parsed;
  };
}

export const parsePort = integerIn(1, 65535);

/** A folder given on the command line, made absolute against the current directory. */
export function absolutePath(value: string): string {
  if (!value) throw new InvalidArgumentError('must not be empty.');
  return path.resolve(value);
}

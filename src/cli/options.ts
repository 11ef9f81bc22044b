/**
 * Option value parsers for commander. A bad value becomes commander's own one-line error
 * ("option '--port <n>' argument 'x' is invalid. ..."), printed as `after: ...`.
 */
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parseHost } from '../ui/request-guard';

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

/** A repeatable `--allowed-host name[:port]`, collected into a list. */
export function collectHostNames(value: string, previous: string[]): string[] {
  const parsed = parseHost(value);
  if (!parsed || parsed.name === '0.0.0.0' || parsed.name === '[::]') {
    throw new InvalidArgumentError('must be a host name or address, optionally with :port (e.g. dash.example.com or 192.168.1.20:5990).');
  }
  return [...previous, value];
}

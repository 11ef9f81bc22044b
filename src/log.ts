/**
 * Logging: a winston logger per process, with child loggers per component. Lines go to the
 * console and, for a worker, to `<log.dir>/<worker>.log` (what `after log` shows).
 * Every message passes through `scrubSecrets`, so a URL with a password never reaches a line,
 * and through `printable` (src/text.ts), so a task id or error message holding ESC sequences or
 * newlines can neither act on the terminal that shows the log nor forge a line of it: one
 * event is always one line, whatever file or component wrote it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import winston from 'winston';
import { printable } from './text';

export type Logger = winston.Logger;

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]*(?::[^/\s@]*)?@/gi;

/** Remove `user:password@` from every URL in a text. */
export function scrubSecrets(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1');
}

const scrub = winston.format((info) => {
  if (typeof info.message === 'string') info.message = scrubSecrets(info.message);
  return info;
});

const line = winston.format.printf((info) => {
  const component = info.component ? ` [${printable(String(info.component))}]` : '';
  return `${String(info.timestamp)} ${info.level}${component} ${printable(String(info.message))}`;
});

export interface LoggerOptions {
  level: string;
  /** Also write to this file (created with its folder). */
  file?: string;
  /** Write to stderr/stdout. @default true */
  console?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const transports: winston.transport[] = [];
  if (options.console !== false) {
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn'] }));
  }
  if (options.file) {
    fs.mkdirSync(path.dirname(options.file), { recursive: true });
    transports.push(new winston.transports.File({ filename: options.file }));
  }
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(scrub(), winston.format.timestamp(), line),
    transports,
  });
}

/** The log file of a worker name. */
export function workerLogFile(logDir: string, worker: string): string {
  return path.join(logDir, `${worker}.log`);
}

/** A logger that drops everything (library use, tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

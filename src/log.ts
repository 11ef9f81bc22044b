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
  if (options.file) transports.push(privateFileTransport(options.file));
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(scrub(), winston.format.timestamp(), line),
    transports,
  });
}

/**
 * Open every log file of `logger` again by its name (SIGUSR2), so that after `logrotate` moved
 * the file away the next line starts a new one where the old one was. The new file is attached
 * before the old one is let go, so no line is lost; lines still on their way to the old file
 * end in it. Child loggers write through their parent's transports and follow. Returns the
 * files reopened.
 */
export function reopenLogFiles(logger: Logger): string[] {
  const files = logger.transports.filter((transport): transport is winston.transports.FileTransportInstance => transport instanceof winston.transports.File);
  const reopened: string[] = [];
  for (const old of files) {
    const filename = path.join(old.dirname, old.filename);
    logger.add(privateFileTransport(filename, old.level));
    logger.remove(old);
    old.close?.();
    reopened.push(filename);
  }
  return reopened;
}

/**
 * Log lines name tasks, jobs, hosts and the errors of runs: a log file is its owner's only,
 * `0600` (a folder After creates for it, `0700`), whatever the umask. A file that exists
 * already (from an older After, or made by logrotate) is made `0600` too.
 */
export function createPrivateFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
}

function privateFileTransport(filename: string, level?: string): winston.transports.FileTransportInstance {
  createPrivateFile(filename);
  return new winston.transports.File({ filename, ...(level !== undefined && { level }), options: { flags: 'a', mode: 0o600 } });
}

/** Stop writing to the console (its terminal was closed: writing there can crash Node); files go on. */
export function detachConsole(logger: Logger): void {
  for (const transport of logger.transports.filter((t) => t instanceof winston.transports.Console)) logger.remove(transport);
}

/** The log file of a worker name. */
export function workerLogFile(logDir: string, worker: string): string {
  return path.join(logDir, `${worker}.log`);
}

/** A logger that drops everything (library use, tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

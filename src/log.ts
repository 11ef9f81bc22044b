/**
 * Logging: a winston logger per process, with child loggers per component. Lines go to the
 * console and, for a worker, to `<log.dir>/<worker>.log` (what `after log` shows).
 * Every message passes through `scrubSecrets`, so a URL with a password never reaches a line,
 * and through `printable` (src/text.ts), so a task id or error message holding ESC sequences or
 * newlines can neither act on the terminal that shows the log nor forge a line of it: one
 * event is always one line, whatever file or component wrote it.
 *
 * The console and the file are LineSinks: the lines of one turn of the event loop leave as one
 * write (a worker in a burst logs thousands a second; one write each cost more than the runs).
 * The two lines of every run (`quickLine`) skip winston's per-line stream machinery and go
 * straight to the same sinks, formatted the same, in order with the rest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import winston from 'winston';
import TransportStream from 'winston-transport';
import { printable } from './text';

export type Logger = winston.Logger;

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]*(?::[^/\s@]*)?@/gi;
/** Where winston puts the formatted line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');
/** Levels written to stderr rather than stdout. */
const STDERR_LEVELS = new Set(['error', 'warn']);
/** Past this many pending characters a sink writes at once rather than at the end of the turn. */
const FLUSH_AT_CHARS = 1 << 20;

/** Remove `user:password@` from every URL in a text. */
export function scrubSecrets(text: string): string {
  return text.includes('://') ? text.replace(URL_CREDENTIALS, '$1') : text;
}

/** One line as every logger of After writes it. */
function formatLine(level: string, message: string, component?: unknown): string {
  const tag = component ? ` [${printable(String(component))}]` : '';
  return `${timestamp()} ${level}${tag} ${printable(scrubSecrets(message))}`;
}

let stampMs = 0;
let stamp = '';

/** Now as ISO 8601; the lines of one millisecond share one string. */
function timestamp(): string {
  const nowMs = Date.now();
  if (nowMs !== stampMs) [stampMs, stamp] = [nowMs, new Date(nowMs).toISOString()];
  return stamp;
}

const line = winston.format((info) => {
  info[MESSAGE] = formatLine(info.level, String(info.message), info.component);
  return info;
});

/** Every sink of the process, written out when it exits. */
const openSinks = new Set<LineSink>();
let exitHookSet = false;

/**
 * Where lines go: the console (stdout, or stderr for warnings and errors) or a file, written
 * once per turn of the event loop. A file is opened `0600`: its lines name tasks and jobs.
 */
class LineSink extends TransportStream {
  private pending: Array<{ text: string; level: string }> = [];
  private pendingChars = 0;
  private flushScheduled = false;
  private fd: number | undefined;
  private discarded = false;

  constructor(readonly file: string | undefined) {
    super();
    if (file) this.open();
    openSinks.add(this);
    if (!exitHookSet) {
      exitHookSet = true;
      process.on('exit', () => {
        for (const sink of openSinks) sink.flush();
      });
    }
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    this.push(String(info[MESSAGE]), String(info.level));
    callback();
  }

  push(text: string, level: string): void {
    if (this.discarded) return;
    this.pending.push({ text, level });
    this.pendingChars += text.length;
    if (this.pendingChars >= FLUSH_AT_CHARS) return this.flush();
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Pending lines dropped, and none written from now on (the console's terminal is gone). */
  discard(): void {
    this.pending = [];
    this.pendingChars = 0;
    this.discarded = true;
  }

  /** Everything pending, written now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingChars = 0;
    if (this.file !== undefined) return this.writeFile(lines.map((l) => `${l.text}\n`).join(''));
    let out = '';
    let err = '';
    for (const l of lines) {
      if (STDERR_LEVELS.has(l.level)) err += `${l.text}\n`;
      else out += `${l.text}\n`;
    }
    if (out) process.stdout.write(out);
    if (err) process.stderr.write(err);
  }

  /** The file opened again by its name (logrotate moved it away): the next lines start a new one. */
  reopen(): void {
    this.flush();
    const old = this.fd;
    this.open();
    if (old !== undefined) fs.closeSync(old);
  }

  override close(): void {
    this.flush();
    openSinks.delete(this);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    createPrivateFile(this.file!);
    this.fd = fs.openSync(this.file!, 'a', 0o600);
  }

  private writeFile(text: string): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, text);
    } catch {
      // A full disk or a file gone away must not stop the worker; the console still has the line.
    }
  }
}

export interface LoggerOptions {
  level: string;
  /** Also write to this file (created with its folder). */
  file?: string;
  /** Write to stderr/stdout. @default true */
  console?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const transports: winston.transport[] = [];
  if (options.console !== false) transports.push(new LineSink(undefined));
  if (options.file) transports.push(new LineSink(options.file));
  const logger = winston.createLogger({ level: options.level, format: line(), transports });
  // `end()` resolves once every line is written: tests and the worker's exit wait for 'finish'.
  logger.on('finish', () => sinksOf(logger).forEach((sink) => sink.flush()));
  return logger;
}

/**
 * A line of `level` through `logger`, without winston's per-line machinery when the logger writes
 * only to LineSinks (the worker's own logger): same format, same sinks, same order.
 */
export function quickLine(logger: Logger, level: 'info' | 'error' | 'debug', message: string): void {
  // winston's isLevelEnabled looks the levels up anew each call; a thousand lines a second notice.
  const levels = logger.levels;
  if (levels[level]! > levels[logger.level]!) return;
  const transports = logger.transports;
  if (logger.silent || transports.length === 0 || !transports.every((transport) => transport instanceof LineSink)) {
    logger.log(level, message);
    return;
  }
  const text = formatLine(level, message);
  for (const sink of transports as LineSink[]) sink.push(text, level);
}

function sinksOf(logger: Logger): LineSink[] {
  return logger.transports.filter((transport): transport is LineSink => transport instanceof LineSink);
}

/**
 * Open every log file of `logger` again by its name (SIGUSR2), so that after `logrotate` moved
 * the file away the next line starts a new one where the old one was; lines before the signal
 * end in the old file. Child loggers write through their parent's sinks and follow. Returns the
 * files reopened.
 */
export function reopenLogFiles(logger: Logger): string[] {
  const reopened: string[] = [];
  for (const sink of sinksOf(logger)) {
    if (sink.file === undefined) continue;
    sink.reopen();
    reopened.push(sink.file);
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

/** Stop writing to the console (its terminal was closed: writing there can crash Node); files go on. */
export function detachConsole(logger: Logger): void {
  for (const sink of sinksOf(logger).filter((s) => s.file === undefined)) {
    sink.discard();
    logger.remove(sink);
    openSinks.delete(sink);
  }
}

/** The log file of a worker name. */
export function workerLogFile(logDir: string, worker: string): string {
  return path.join(logDir, `${worker}.log`);
}

/** A logger that drops everything (library use, tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

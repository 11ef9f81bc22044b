/**
 * How `after start <name> -b` hands a background worker its credentials without a file: the
 * worker's process under pm2 (its keeper, worker-keeper.ts) listens on a Unix socket,
 * `$AFTER_HOME/secrets/<name>.sock` (in a 0700 folder, the socket 0600), and the command
 * connects to it and writes them, one JSON line; pm2 is told only the socket's path.
 *
 * Until issue 19 they went through `$AFTER_HOME/secrets/<name>.json`, which the worker took and
 * wrote back whenever it exited, for pm2 to restart it: a program of a run that signalled the
 * worker and watched that path read the password. Now no file ever holds them: the keeper
 * restarts the worker itself, and a keeper pm2 starts again (after `pm2 restart`, a SIGKILL)
 * listens again and waits, in one log line, for `after start <name> -b`.
 *
 * What a socket cannot stop: a process of the same user can connect to it too (it could send
 * the keeper wrong credentials, not read the right ones), and could put a socket of its own at
 * that path before the command connects, to receive them. A program of a run can do that only
 * if it runs as the worker's user: see SECURITY.md, and `worker.program_user`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { AfterError } from '../errors';
import type { Logger } from '../log';
import { SECRET_ENV_KEYS, type SecretEnvValues } from '../config/secret-env';

/** What pm2 gives the keeper: the socket's path, never a credential. */
export const CREDENTIALS_SOCKET_ENV = 'AFTER_CREDENTIALS_SOCKET';
/** Longest socket path Linux takes (sun_path is 108 bytes, NUL included). */
const MAX_SOCKET_PATH = 107;
/** A keeper still waiting after this long says so in its log. */
const WAITING_NOTICE_MS = 5000;
/** How much a connection may send before it is dropped: a few URLs. */
const MAX_MESSAGE_BYTES = 64 * 1024;

export function credentialSocketPath(home: string, worker: string): string {
  const socket = path.join(path.resolve(home), 'secrets', `${worker}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new AfterError('E_SOCKET_PATH', `the credentials socket ${socket} is longer than a Unix socket path may be (${MAX_SOCKET_PATH} bytes); use a shorter AFTER_HOME`);
  }
  return socket;
}

/**
 * In the keeper: listen on `socket` until a connection writes credentials, then stop listening
 * and remove it. Resolves with them, or with undefined once `stopRequested` settles first.
 */
export function receiveCredentials(
  socket: string,
  options: { worker: string; log: Logger; stopRequested: Promise<unknown> },
): Promise<SecretEnvValues | undefined> {
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.dirname(socket), 0o700);
  // A socket left by a keeper that was killed.
  fs.rmSync(socket, { force: true });
  return new Promise((resolve, reject) => {
    let settled = false;
    let noticeGiven = false;
    const server = net.createServer((connection) => {
      let text = '';
      connection.setEncoding('utf8');
      connection.on('error', () => undefined);
      connection.on('data', (chunk: string) => {
        text += chunk;
        if (text.length > MAX_MESSAGE_BYTES) return void connection.destroy();
        const newline = text.indexOf('\n');
        if (newline === -1) return;
        const values = parseCredentials(text.slice(0, newline));
        if (values === undefined || settled) return void connection.end('refused\n');
        connection.end('ok\n');
        if (noticeGiven) options.log.info(`worker ${options.worker} received its credentials`);
        finish(values);
      });
    });
    const notice = setTimeout(() => {
      noticeGiven = true;
      options.log.warn(
        `worker ${options.worker} has no credentials: run 'after start ${options.worker} -b' again to hand them to it ` +
          '(they are kept in memory only, so a worker started again by pm2 asks for them)',
      );
    }, WAITING_NOTICE_MS);
    notice.unref();
    const finish = (values: SecretEnvValues | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(notice);
      server.close();
      fs.rmSync(socket, { force: true });
      resolve(values);
    };
    server.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(notice);
      reject(new AfterError('E_CREDENTIALS_SOCKET', `cannot listen on the credentials socket ${socket}: ${err.message}`));
    });
    // Created 0600 whatever the umask: only this user may connect (the bind is synchronous).
    const umask = process.umask(0o177);
    try {
      server.listen(socket);
    } finally {
      process.umask(umask);
    }
    void options.stopRequested.then(() => finish(undefined));
  });
}

/**
 * In `after start -b`: connect to the keeper's socket (waiting for it to listen) and hand it
 * `values`. Resolves true once the keeper has taken them, false when none took them in time.
 */
export async function sendCredentials(socket: string, values: SecretEnvValues, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await sendOnce(socket, values).catch(() => undefined);
    if (answer === 'ok') return true;
    if (answer === 'refused' || Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function sendOnce(socket: string, values: SecretEnvValues): Promise<string> {
  return new Promise((resolve, reject) => {
    const connection = net.createConnection(socket);
    let answer = '';
    connection.setEncoding('utf8');
    connection.setTimeout(5000, () => connection.destroy(new Error('no answer')));
    connection.on('connect', () => connection.write(`${JSON.stringify(values)}\n`));
    connection.on('data', (chunk: string) => (answer += chunk));
    connection.on('end', () => resolve(answer.trim()));
    connection.on('error', reject);
  });
}

/** The credentials a connection wrote: a JSON object of SECRET_ENV_KEYS strings (at least one). */
function parseCredentials(line: string): SecretEnvValues | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const values: SecretEnvValues = {};
  for (const key of SECRET_ENV_KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string' && value) values[key] = value;
  }
  return Object.keys(values).length > 0 ? values : undefined;
}

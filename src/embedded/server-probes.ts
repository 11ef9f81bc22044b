/**
 * Probes of the embedded server's process while it is started: is the port free, who holds it
 * when it is not, and does the child we spawned answer yet. They ask `GET /` (the welcome,
 * without credentials) with plain fetch and never touch a database: process management, not
 * database access, which goes through src/store/ only.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { delay } from '../clock';
import { AfterError, toError } from '../errors';
import { embeddedFiles, isOurServer, readState } from './server-files';

const READY_TIMEOUT_MS = 30_000;
const LOG_TAIL_LINES = 15;

/** One-line refusal naming who holds the port: our server (per db.json) or something else. */
export async function refuseTakenPort(host: string, port: number, url: string, home: string): Promise<void> {
  const problem = await tryListen(host, port);
  if (!problem) return;
  if (problem !== 'EADDRINUSE') {
    throw new AfterError('E_EMBEDDED_START', `cannot bind ${host}:${port} (${problem})`);
  }
  const state = readState(embeddedFiles(home).state);
  if (state && state.port === port && isOurServer(state.pid)) {
    throw new AfterError('E_PORT_TAKEN', `port ${port} is taken by the embedded server at ${state.url} (pid ${state.pid})`);
  }
  const other = await describeServerAt(url);
  throw new AfterError('E_PORT_TAKEN', `port ${port} on ${host} is taken by ${other}; choose another with --port`);
}

/** Resolves once our server answers `GET /`; rejects when the child exits first or after 30 s. */
export async function waitUntilAnswering(url: string, exitCode: Promise<number>, logFile: string, background: boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: number | undefined;
  void exitCode.then((code) => (exited = code));
  const logHint = (): string => (background ? `; last lines of ${logFile}:\n${tailLines(logFile, LOG_TAIL_LINES)}` : '');
  for (;;) {
    if (exited !== undefined) {
      throw new AfterError('E_EMBEDDED_START', `the embedded server exited with code ${exited} while starting${logHint()}`);
    }
    // Only our server's welcome counts: another program may have taken the port meanwhile.
    const answer = await welcome(url, 1000);
    if (answer?.ok && answer.body['express-pouchdb'] !== undefined) return;
    if (Date.now() > deadline) {
      throw new AfterError('E_EMBEDDED_START', `the embedded server did not answer at ${url} within ${READY_TIMEOUT_MS / 1000} s${logHint()}`);
    }
    await delay(100);
  }
}

function tryListen(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

async function describeServerAt(url: string): Promise<string> {
  const body = (await welcome(url, 2000))?.body;
  if (body?.couchdb === 'Welcome') return `a CouchDB ${String(body.version)} server`;
  if (body?.['express-pouchdb']) return `another pouchdb-server (${String(body.version)}) not started from this AFTER_HOME`;
  return 'another program';
}

/** What a server answers `GET /` with, or undefined: not listening, not HTTP, not a JSON object. */
async function welcome(url: string, timeoutMs: number): Promise<{ ok: boolean; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as Record<string, unknown>;
    return typeof body === 'object' && body !== null ? { ok: res.ok, body } : undefined;
  } catch {
    return undefined;
  }
}

function tailLines(file: string, count: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-count).join('\n') || '(empty)';
  } catch (err) {
    return `(cannot read: ${toError(err).message})`;
  }
}

/**
 * The files in AFTER_HOME that say which embedded server runs, `db.pid` and `db.json`, and
 * whether the pid they name is still our server: after a reboot a stale pid file may name an
 * unrelated process that got the same pid.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isAlive } from '../process';

/** What `db.json` holds about the server started from this home. */
export interface EmbeddedState {
  pid: number;
  host: string;
  port: number;
  dir: string;
  url: string;
  started_at: string;
}

/** What names our server in /proc/<pid>/cmdline; `pouchdb-server` for one an older After started. */
const SERVER_COMMAND_MARKS = [path.join('embedded', 'launcher.js'), 'pouchdb-server'];

export function embeddedFiles(home: string): { pid: string; state: string; log: string } {
  return { pid: path.join(home, 'db.pid'), state: path.join(home, 'db.json'), log: path.join(home, 'db.log') };
}

/** The server started from `home` when it runs: its pid, and its state when db.json is about it. */
export function runningServer(home: string): { pid: number; state: EmbeddedState | undefined } | null {
  const files = embeddedFiles(path.resolve(home));
  const pid = readPid(files.pid);
  if (pid === undefined || !isOurServer(pid)) return null;
  const state = readState(files.state);
  return { pid, state: state?.pid === pid ? state : undefined };
}

export function writeServerFiles(files: { pid: string; state: string }, state: EmbeddedState): void {
  fs.writeFileSync(files.pid, `${state.pid}\n`);
  fs.writeFileSync(files.state, `${JSON.stringify(state, null, 2)}\n`);
}

/** Remove pid and state files, unless they already describe a newer server. */
export function removeServerFiles(files: { pid: string; state: string }, pid: number): void {
  if (readPid(files.pid) === pid) fs.rmSync(files.pid, { force: true });
  if (readState(files.state)?.pid === pid) fs.rmSync(files.state, { force: true });
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function readState(file: string): EmbeddedState | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as EmbeddedState;
    return typeof state.pid === 'number' && typeof state.port === 'number' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** The pid runs (not a zombie) and is our server. Where /proc is missing, liveness alone decides. */
export function isOurServer(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return SERVER_COMMAND_MARKS.some((mark) => cmdline.includes(mark));
  } catch {
    return true;
  }
}

/** A pouchdb-server an older After started (no admin until it is restarted). */
export function isOldPouchdbServer(pid: number): boolean {
  try {
    return !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SERVER_COMMAND_MARKS[0]!);
  } catch {
    return false;
  }
}

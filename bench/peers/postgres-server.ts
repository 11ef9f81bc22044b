/**
 * A throwaway PostgreSQL for pg-boss: Debian's server binaries (/usr/lib/postgresql/<version>/bin),
 * a cluster made by initdb in a temp folder, listening on a free loopback port with its socket
 * in that folder, stopped by PID.
 *
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user that
 * Debian's package creates and initdb/pg_ctl run through `runuser`.
 *
 * synchronous_commit=off: the other two databases in the comparison do not wait for the disk
 * either (Redis runs without persistence here, pouchdb-server's LevelDB writes without sync),
 * so a commit here does not wait for its WAL flush. Crash safety of the data files is unchanged.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../test/helpers/ports';
import { findExecutable, stopByPid } from './server-process';

const run = promisify(execFile);
const DEBIAN_SERVERS = '/usr/lib/postgresql';
const CLUSTER_USER = 'bench';
const RUN_AS = 'postgres';
/** util-linux's, in /usr/sbin: not on every PATH. */
const RUNUSER = findExecutable('runuser') ?? '/usr/sbin/runuser';

export const POSTGRES_PACKAGE_NOTE = `PostgreSQL's server is not installed (apt-get install postgresql)`;

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  database: string;
  pid: number;
  /** "15.14", from `postgres --version`. */
  version: string;
  stop(): Promise<void>;
}

/** The bin folder of the newest server Debian installed, if any. */
export function postgresBinDir(): string | undefined {
  let versions: string[];
  try {
    versions = fs.readdirSync(DEBIAN_SERVERS);
  } catch {
    return undefined;
  }
  const installed = versions
    .filter((version) => fs.existsSync(path.join(DEBIAN_SERVERS, version, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return installed[0] === undefined ? undefined : path.join(DEBIAN_SERVERS, installed[0], 'bin');
}

export async function startPostgres(): Promise<PostgresServer> {
  const binDir = postgresBinDir();
  if (!binDir) throw new Error(POSTGRES_PACKAGE_NOTE);
  const asRoot = process.getuid?.() === 0;
  const asOwner = (program: string, args: string[]): Promise<{ stdout: string }> =>
    asRoot ? run(RUNUSER, ['-u', RUN_AS, '--', path.join(binDir, program), ...args]) : run(path.join(binDir, program), args);

  const version = /PostgreSQL\)\s+(\S+)/.exec((await run(path.join(binDir, 'postgres'), ['--version'])).stdout)?.[1] ?? '?';
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-pg-'));
  const data = path.join(root, 'data');
  const port = await freePort();
  let pid: number | undefined;
  const stop = async (): Promise<void> => {
    // pg_ctl may have failed after the server came up: its pid file still names it.
    pid ??= postmasterPid(data);
    // SIGINT is PostgreSQL's "fast" shutdown: end the sessions, checkpoint, exit.
    if (pid !== undefined) await stopByPid(pid, 'SIGINT', 'SIGQUIT');
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    if (asRoot) await run('chown', [`${RUN_AS}:${RUN_AS}`, root]);
    await asOwner('initdb', ['-D', data, '-U', CLUSTER_USER, '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const serverOptions = `-c listen_addresses=127.0.0.1 -p ${port} -k ${root} -c synchronous_commit=off`;
    await asOwner('pg_ctl', ['-D', data, '-l', path.join(root, 'server.log'), '-w', '-t', '60', '-o', serverOptions, 'start']);
    pid = postmasterPid(data);
    if (pid === undefined) throw new Error('pg_ctl started no server');
  } catch (err) {
    await stop();
    throw new Error(`cannot start PostgreSQL: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
  return { host: '127.0.0.1', port, user: CLUSTER_USER, database: 'postgres', pid, version, stop };
}

/** The server's PID, first line of the pid file it writes in its data folder. */
function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

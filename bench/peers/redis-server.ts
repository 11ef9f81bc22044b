/**
 * A throwaway Redis for BullMQ: Debian's redis-server on a free loopback port, no persistence
 * (`--save ''`, `--appendonly no`), its working folder in a temp folder, stopped by PID.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { freePort } from '../../test/helpers/ports';
import { findExecutable, stopByPid } from './server-process';

export const REDIS_PACKAGE_NOTE = 'redis-server is not installed (apt-get install redis-server)';

export interface RedisServer {
  host: string;
  port: number;
  pid: number;
  /** "7.0.15", from `redis-server --version`. */
  version: string;
  stop(): Promise<void>;
}

export function redisInstalled(): boolean {
  return findExecutable('redis-server') !== undefined;
}

export async function startRedis(): Promise<RedisServer> {
  const binary = findExecutable('redis-server');
  if (!binary) throw new Error(REDIS_PACKAGE_NOTE);
  const version = /v=(\S+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start redis-server');
  const stop = async (): Promise<void> => {
    await stopByPid(pid, 'SIGTERM', 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await readyLine(child, 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: '127.0.0.1', port, pid, version, stop };
}

function readyLine(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<void> {
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready after ${timeoutMs} ms: ${lines.join('\n')}`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (code ${code}): ${lines.join('\n')}`));
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (/Ready to accept connections/.test(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

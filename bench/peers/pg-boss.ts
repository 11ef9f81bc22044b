/**
 * pg-boss on PostgreSQL as a peer: tasks become jobs with `startAfter` = the due date, inserted
 * in one `insert`; a worker in a child process fetches batches of up to the bench's concurrency.
 *
 * pg-boss finds due jobs by polling: its worker fetches, runs the batch, and sleeps out the rest
 * of `pollingIntervalSeconds` (a NOTIFY only reaches workers of the inserting process). The bench
 * uses the smallest interval pg-boss 10 accepts, 0.5 s.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Peer, PeerQueue, PeerTask } from './peer';
import { loadPeerModule, peerModuleVersion } from './modules';
import { startPostgres } from './postgres-server';
import { startPeerWorker } from './worker-process';

export const PG_BOSS_MODULES = ['pg-boss'] as const;
/** pg-boss 10 refuses anything below 500 ms (POLICY.MIN_POLLING_INTERVAL_MS in its attorney.js). */
export const PG_BOSS_POLLING_INTERVAL_SECONDS = 0.5;
const WORKER_SCRIPT = path.join(__dirname, 'pg-boss-worker.js');
/** pg-boss has no completion event (it completes a batch without awaiting it): count instead. */
const DONE_POLL_MS = 25;

/** The part of pg-boss's API the bench calls (pg-boss 10, CommonJS: the module is the class). */
export type PgBossModule = new (options: PgBossOptions) => PgBoss;

export interface PgBossOptions {
  host: string;
  port: number;
  user: string;
  database: string;
  /** false: no maintenance or monitoring loop (the bench's own instance only inserts and counts). */
  supervise?: boolean;
  /** false: no cron scheduling loop. */
  schedule?: boolean;
}

export interface PgBossJob {
  id: string;
  data: { id: string };
}

export interface PgBoss {
  on(event: 'error', listener: (err: Error) => void): unknown;
  start(): Promise<unknown>;
  stop(options?: { graceful?: boolean; wait?: boolean; timeout?: number }): Promise<void>;
  createQueue(name: string): Promise<void>;
  insert(jobs: Array<{ name: string; data: PgBossJob['data']; startAfter: string }>): Promise<unknown>;
  /** Jobs of the queue in a state before `before` (created < retry < active < completed < cancelled < failed). */
  getQueueSize(name: string, options: { before: string }): Promise<number | null>;
  work(
    name: string,
    options: { batchSize: number; pollingIntervalSeconds: number },
    handler: (jobs: PgBossJob[]) => Promise<unknown>,
  ): Promise<string>;
}

export async function startPgBossPeer(): Promise<Peer> {
  const postgres = await startPostgres();
  const connection = { host: postgres.host, port: postgres.port, user: postgres.user, database: postgres.database };
  const PgBossClass = loadPeerModule<PgBossModule>('pg-boss');
  const boss = new PgBossClass({ ...connection, supervise: false, schedule: false });
  boss.on('error', (err) => process.stderr.write(`bench: pg-boss: ${err.message}\n`));
  try {
    // The first start creates pg-boss's schema, before any worker process starts.
    await boss.start();
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  return {
    label: `pg-boss ${peerModuleVersion('pg-boss')} (PostgreSQL ${postgres.version})`,
    setup: `jobs with startAfter inserted in one insert, one work() in its own process, batchSize = After's concurrency, pollingIntervalSeconds ${PG_BOSS_POLLING_INTERVAL_SECONDS} (the minimum); PostgreSQL with synchronous_commit=off`,
    async openQueue(label, concurrency) {
      const name = `after-bench-${label}-${randomBytes(4).toString('hex')}`;
      await boss.createQueue(name);
      const worker = startPeerWorker(WORKER_SCRIPT, { queue: name, concurrency, connection });
      try {
        await worker.ready;
      } catch (err) {
        await worker.stop();
        throw err;
      }
      return pgBossQueue(boss, name, worker);
    },
    async stop() {
      await boss.stop({ graceful: false, wait: true });
      await postgres.stop();
    },
  };
}

function pgBossQueue(boss: PgBoss, name: string, worker: ReturnType<typeof startPeerWorker>): PeerQueue {
  return {
    startedAtMs: worker.startedAtMs,
    async insert(tasks: readonly PeerTask[]) {
      await boss.insert(tasks.map((task) => ({ name, data: { id: task.id }, startAfter: new Date(task.dueMs).toISOString() })));
    },
    async waitForAllDone(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while ((await boss.getQueueSize(name, { before: 'completed' })) !== 0) {
        if (Date.now() > deadline) throw new Error(`pg-boss: not all ${count} jobs completed after ${timeoutMs} ms; worker said: ${worker.tail()}`);
        await new Promise((resolve) => setTimeout(resolve, DONE_POLL_MS));
      }
      const lastDoneAt = Date.now();
      const completed = (await boss.getQueueSize(name, { before: 'cancelled' })) ?? 0;
      if (completed < count) throw new Error(`expected ${count} jobs completed, PostgreSQL says ${completed}`);
      return lastDoneAt;
    },
    close: () => worker.stop(),
  };
}

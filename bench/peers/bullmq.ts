/**
 * BullMQ on Redis as a peer: tasks become delayed jobs (`delay` = due − now, with the job's
 * `timestamp` set to that same "now", so BullMQ's own due time is exactly the task's), added in
 * one `addBulk`; a Worker with the bench's concurrency runs them in a child process.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Peer, PeerQueue, PeerTask } from './peer';
import { loadPeerModule, peerModuleVersion } from './modules';
import { startRedis } from './redis-server';
import { startPeerWorker } from './worker-process';

export const BULLMQ_MODULES = ['bullmq', 'ioredis'] as const;
const WORKER_SCRIPT = path.join(__dirname, 'bullmq-worker.js');
const JOB_NAME = 'noop';

/** The part of BullMQ's API the bench calls (bullmq 6, its CommonJS build). */
export interface BullmqModule {
  Queue: new (name: string, options: { connection: RedisConnection }) => BullmqQueue;
  Worker: new (
    name: string,
    processor: (job: BullmqJob) => Promise<unknown>,
    options: { connection: RedisConnection; concurrency: number },
  ) => BullmqWorker;
}

/** ioredis options; BullMQ's workers require `maxRetriesPerRequest: null` (blocking commands). */
export interface RedisConnection {
  host: string;
  port: number;
  maxRetriesPerRequest: null;
}

export interface BullmqJob {
  data: { id: string };
}

interface BullmqQueue {
  waitUntilReady(): Promise<unknown>;
  addBulk(jobs: Array<{ name: string; data: BullmqJob['data']; opts: { delay: number; timestamp: number } }>): Promise<unknown[]>;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export interface BullmqWorker {
  on(event: 'completed', listener: (job: BullmqJob) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}

export async function startBullmqPeer(): Promise<Peer> {
  const redis = await startRedis();
  const bullmq = loadPeerModule<BullmqModule>('bullmq');
  const connection: RedisConnection = { host: redis.host, port: redis.port, maxRetriesPerRequest: null };
  return {
    label: `BullMQ ${peerModuleVersion('bullmq')} (Redis ${redis.version})`,
    setup: 'delayed jobs added in one addBulk, a Worker in its own process with the same concurrency as After',
    async openQueue(label, concurrency) {
      const name = `after-bench-${label}-${randomBytes(4).toString('hex')}`;
      const queue = new bullmq.Queue(name, { connection });
      const worker = startPeerWorker(WORKER_SCRIPT, { queue: name, concurrency, connection: { host: redis.host, port: redis.port } });
      try {
        await Promise.all([queue.waitUntilReady(), worker.ready]);
      } catch (err) {
        await Promise.all([worker.stop(), queue.close()]);
        throw err;
      }
      return bullmqQueue(queue, worker);
    },
    stop: () => redis.stop(),
  };
}

function bullmqQueue(queue: BullmqQueue, worker: ReturnType<typeof startPeerWorker>): PeerQueue {
  return {
    startedAtMs: worker.startedAtMs,
    async insert(tasks: readonly PeerTask[]) {
      const now = Date.now();
      await queue.addBulk(
        tasks.map((task) => ({ name: JOB_NAME, data: { id: task.id }, opts: { delay: Math.max(0, task.dueMs - now), timestamp: now } })),
      );
    },
    async waitForAllDone(count, timeoutMs) {
      const lastDoneAt = await worker.waitForDone(count, timeoutMs);
      const counts = await queue.getJobCounts('completed');
      if ((counts.completed ?? 0) < count) throw new Error(`expected ${count} jobs completed, Redis says ${JSON.stringify(counts)}`);
      return lastDoneAt;
    },
    async close() {
      await worker.stop();
      await queue.close();
    },
  };
}

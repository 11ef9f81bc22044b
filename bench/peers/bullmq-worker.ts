/**
 * BullMQ's worker process for the bench (see worker-protocol.ts): runs the same immediate no-op
 * job as After's bench, noting when it starts, and reports each completion BullMQ announces.
 */
import type { BullmqModule } from './bullmq';
import { loadPeerModule } from './modules';
import { workerSide } from './worker-protocol';

async function main(): Promise<void> {
  const settings = workerSide.settings();
  const { Worker } = loadPeerModule<BullmqModule>('bullmq');
  const connection = { host: String(settings.connection.host), port: Number(settings.connection.port), maxRetriesPerRequest: null };
  const worker = new Worker(
    settings.queue,
    async (job) => {
      workerSide.started(job.data.id, Date.now());
      return undefined;
    },
    { connection, concurrency: settings.concurrency },
  );
  worker.on('completed', (job) => workerSide.done(job.data.id));
  worker.on('error', (err) => process.stderr.write(`bullmq worker: ${err.message}\n`));
  workerSide.stopOnSigterm(() => worker.close());
  await worker.waitUntilReady();
  workerSide.ready();
}

main().catch((err: Error) => {
  process.stderr.write(`bullmq worker: ${err.message}\n`);
  process.exit(1);
});

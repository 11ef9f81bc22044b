/**
 * pg-boss's worker process for the bench (see worker-protocol.ts): one work() fetching batches
 * of up to the bench's concurrency, running the same immediate no-op job as After's bench for
 * each task of a batch, noting when it starts.
 */
import { loadPeerModule } from './modules';
import { PG_BOSS_POLLING_INTERVAL_SECONDS, type PgBossModule } from './pg-boss';
import { workerSide } from './worker-protocol';

async function main(): Promise<void> {
  const settings = workerSide.settings();
  const PgBossClass = loadPeerModule<PgBossModule>('pg-boss');
  const { host, port, user, database } = settings.connection;
  const boss = new PgBossClass({ host: String(host), port: Number(port), user: String(user), database: String(database) });
  boss.on('error', (err) => process.stderr.write(`pg-boss worker: ${err.message}\n`));
  workerSide.stopOnSigterm(() => boss.stop({ graceful: true, wait: true, timeout: 10_000 }));
  await boss.start();
  await boss.work(
    settings.queue,
    { batchSize: settings.concurrency, pollingIntervalSeconds: PG_BOSS_POLLING_INTERVAL_SECONDS },
    async (jobs) => {
      await Promise.all(jobs.map(async (job) => workerSide.started(job.data.id, Date.now())));
    },
  );
  workerSide.ready();
}

main().catch((err: Error) => {
  process.stderr.write(`pg-boss worker: ${err.message}\n`);
  process.exit(1);
});

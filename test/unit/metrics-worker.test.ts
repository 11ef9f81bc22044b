/**
 * The worker's Prometheus registry, fed by a stand-in worker: what a scrape shows for the
 * gauges and counters read from the worker when scraped (held by status, database health,
 * feed lag), including a scrape while the database does not answer.
 */
import { expect } from 'chai';
import * as http from 'node:http';
import { SafeEmitter } from '../../src/events';
import { startMetricsServer } from '../../src/metrics/metrics-server';
import { createWorkerMetrics, outcomeOf, type MeteredWorker } from '../../src/metrics/worker-metrics';
import type { StoreHealth } from '../../src/store/types';
import type { WorkerEvents } from '../../src/worker/events';

function standIn(overrides: Partial<MeteredWorker> = {}): MeteredWorker & { health: StoreHealth } {
  const health: StoreHealth = { requestErrors: 0, feedReconnects: 0 };
  return {
    name: 'nightly',
    events: new SafeEmitter<WorkerEvents>(),
    runningCount: 0,
    health,
    databaseHealth: health,
    heldByStatus: () => new Map(),
    feedSeqBehind: async () => 0,
    ...overrides,
  };
}

async function scrape(worker: MeteredWorker): Promise<string> {
  const metrics = createWorkerMetrics(worker, { defaultMetrics: false });
  try {
    return await metrics.registry.metrics();
  } finally {
    metrics.detach();
  }
}

describe('worker metrics registry', () => {
  it('shows held tasks by the status of their document', async () => {
    const text = await scrape(standIn({ heldByStatus: () => new Map([['scheduled', 40], ['running', 2]]) }));
    expect(text).to.contain('after_tasks_held{status="scheduled",worker="nightly"} 40');
    expect(text).to.contain('after_tasks_held{status="running",worker="nightly"} 2');
    expect(text).not.to.contain('status="waiting"');
  });

  it('counts throttled runs by limit, and shows the tasks waiting for a limit or for their dependencies', async () => {
    const worker = standIn({ throttledCount: 7, waitingForDependenciesCount: 2 });
    const metrics = createWorkerMetrics(worker, { defaultMetrics: false });
    worker.events.emit('task:throttled', { id: 'a', limit: 'mailer', waitedMs: 300 });
    worker.events.emit('task:throttled', { id: 'b', limit: 'mailer', waitedMs: 900 });
    worker.events.emit('task:throttled', { id: 'c', limit: 'mailer/send_email', waitedMs: 10 });
    const text = await metrics.registry.metrics();
    metrics.detach();
    expect(text).to.contain('after_tasks_throttled_total{limit="mailer",worker="nightly"} 2');
    expect(text).to.contain('after_tasks_throttled_total{limit="mailer/send_email",worker="nightly"} 1');
    expect(text).to.contain('after_tasks_throttled{worker="nightly"} 7');
    expect(text).to.contain('after_tasks_waiting_for_dependencies{worker="nightly"} 2');
  });

  it('counts failed database requests and feed reconnects as the store counted them', async () => {
    const worker = standIn();
    worker.health.requestErrors = 7;
    worker.health.feedReconnects = 3;
    const metrics = createWorkerMetrics(worker, { defaultMetrics: false });
    expect(await metrics.registry.metrics()).to.contain('after_database_errors_total{worker="nightly"} 7');
    worker.health.requestErrors = 9;
    const second = await metrics.registry.metrics();
    expect(second, 'a second scrape shows the running total, not a sum of scrapes').to.contain('after_database_errors_total{worker="nightly"} 9');
    expect(second).to.contain('after_feed_reconnects_total{worker="nightly"} 3');
    metrics.detach();
  });

  it('shows how far the feed is behind, and NaN (unknown, not 0) when the database does not answer', async () => {
    expect(await scrape(standIn({ feedSeqBehind: async () => 12 }))).to.contain('after_feed_seq_behind{worker="nightly"} 12');
    const down = await scrape(standIn({ feedSeqBehind: () => Promise.reject(new Error('connect ECONNREFUSED')) }));
    // prom-client writes "Nan"; Prometheus parses NaN in any case (strconv.ParseFloat).
    expect(down).to.match(/^after_feed_seq_behind\{worker="nightly"\} nan$/im);
    expect(down, 'the rest of the scrape still answers').to.contain('after_runs_running{worker="nightly"} 0');
  });
});

describe('the outcome label of a finished run', () => {
  const cases: Array<[WorkerEvents['task:finished'], string]> = [
    [{ id: 't', status: 'done', durationMs: 1, outcome: 'success' }, 'success'],
    [{ id: 't', status: 'waiting', durationMs: 1, outcome: 'later', date: '2030-01-01T00:00:00.000Z' }, 'success'],
    [{ id: 't', status: 'waiting', durationMs: 1, outcome: 'retry', error: 'not yet' }, 'failure'],
    [{ id: 't', status: 'waiting', durationMs: 1, outcome: 'release', date: '2030-01-01T00:00:00.000Z' }, 'released'],
    [{ id: 't', status: 'error', durationMs: 1, outcome: 'failure', error: 'boom' }, 'failure'],
    [{ id: 't', status: 'canceled', durationMs: 1, outcome: 'canceled' }, 'canceled'],
  ];
  for (const [finished, label] of cases) {
    it(`${finished.outcome} ending ${finished.status} → ${label}`, () => expect(outcomeOf(finished)).to.equal(label));
  }
});

describe('the metrics endpoint: Host names (DNS rebinding)', () => {
  /** A GET with exactly this Host header (fetch would not let a test set it). */
  function get(port: number, host: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/metrics', headers: { host }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('answers the loopback names and --metrics-allowed-host names, and 421 to any other Host', async () => {
    const server = await startMetricsServer({ port: 0, allowedHosts: ['prometheus.lan', 'scraper.lan:9999'] });
    try {
      const worker = standIn();
      const metrics = createWorkerMetrics(worker, { defaultMetrics: false });
      server.use(metrics.registry);
      const port = Number(new URL(server.url).port);
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `prometheus.lan:${port}`, 'scraper.lan:9999']) {
        const answer = await get(port, host);
        expect(answer.status, host).to.equal(200);
        expect(answer.body, host).to.include('after_');
      }
      for (const host of [`evil.test:${port}`, `rebound.attacker.example:${port}`, 'scraper.lan:80', `localhost:${port + 1}`]) {
        const answer = await get(port, host);
        expect(answer.status, host).to.equal(421);
        expect(answer.body, host).to.not.include('after_');
      }
      metrics.detach();
    } finally {
      await server.close();
    }
  });
});

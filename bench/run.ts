/**
 * `make bench` (node dist/bench/run.js): the workloads against one database server, one table.
 *
 *   node dist/bench/run.js [--only w1,w1b,w2,w3,w4,w5,rl,w6] [--w3-tasks N] [--w6-tasks N] [--w4-seconds S]
 *                          [--concurrency N] [--profile DIR] [--peers | --no-peers]
 *
 * The server: a fresh embedded pouchdb-server by default; COUCHDB_URL (a CouchDB server URL
 * with credentials) measures that CouchDB instead; COUCHDB_CLUSTER_URLS (the nodes' URLs,
 * space-separated, as `couchdb.sh cluster url` prints them) a cluster, where W5 runs.
 * Every workload makes fresh databases on it and deletes them afterwards (also on Ctrl-C).
 *
 * Environment (so `make bench W3_TASKS=200000` works): W3_TASKS, BENCH_W3 (same: the full
 * figure is BENCH_W3=1000000), BENCH_W6 (W6's tasks, 100000; the dashboard at a million on
 * CouchDB is BENCH_W6=1000000), BENCH_W5 (tasks, 3000), BENCH_W5_INSTANCES (1,2,3), BENCH_ONLY,
 * BENCH_PROFILE, BENCH_PEERS=0 (no peers), BENCH_INIT_ARGS (added to every `after init`),
 * BENCH_KEEP_LOGS=DIR (the workers' log files are copied there before their database goes).
 *
 * W1 and W2 also run on the peers (BullMQ/Redis, pg-boss/PostgreSQL, bench/peers/) when they
 * are installed (`make bench-peers-setup`), in the same table, on the embedded server's runs
 * (`--peers` adds them to a CouchDB run); a peer that is not installed gets a row saying what
 * to install.
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { peerBench, runPeerBurst, runPeerPrecision, type PeerBench } from './peers/index';
import { formatTable, type Row } from './report';
import { cleanUpOnInterrupt, couchdbServer, REPO_ROOT, startEmbeddedServer, type BenchServer } from './server';
import { runBurst } from './workloads/burst';
import { runDashboard } from './workloads/dashboard';
import { runMidnight } from './workloads/midnight';
import { runPrecision } from './workloads/precision';
import { runRateLimit } from './workloads/rate-limit';
import { runScale } from './workloads/scale';
import { runScaleOut } from './workloads/scale-out';
import { runSteady } from './workloads/steady';

const WORKLOADS = ['w1', 'w1b', 'w2', 'w3', 'w4', 'w5', 'rl', 'w6'] as const;
type Workload = (typeof WORKLOADS)[number];
/** What runs when BENCH_ONLY / --only does not say: W5 needs a cluster and is all a cluster run does. */
const DEFAULT_WORKLOADS: Workload[] = ['w1', 'w1b', 'w2', 'w3', 'w4', 'rl', 'w6'];
const DEFAULT_CLUSTER_WORKLOADS: Workload[] = ['w5'];

interface BenchArgs {
  /** undefined: the server's default set. */
  only: Workload[] | undefined;
  w3Tasks: number;
  /** W6's tasks: the dashboard at scale. */
  w6Tasks: number;
  w4Seconds: number;
  w5Tasks: number;
  w5Instances: number[];
  concurrency: number;
  profileDir: string | undefined;
  /** Run W1 and W2 on the peers too (those installed); undefined: on the embedded server only. */
  peers: boolean | undefined;
  /** COUCHDB_CLUSTER_URLS, else COUCHDB_URL, else none (embedded). */
  serverUrls: string[];
}

/**
 * W3's default keeps `make bench` within minutes: pouchdb-server loads about ten thousand
 * documents a second on a small machine and builds its indexes more slowly; a million is
 * BENCH_W3=1000000.
 */
const DEFAULT_W3_TASKS = 100_000;
const USAGE =
  'usage: [COUCHDB_URL=... | COUCHDB_CLUSTER_URLS="..."] node dist/bench/run.js [--only w1,w1b,w2,w3,w4,w5,rl,w6] [--w3-tasks N] [--w6-tasks N] [--w4-seconds S] [--concurrency N] [--profile DIR] [--peers | --no-peers]';
/** The same counts for After and for the peers. */
const W1_TASKS = 3000;
const W2_TASKS = 600;
const W2_SPREAD_MS = 20_000;
const DEFAULT_W5_TASKS = 3000;

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): BenchArgs {
  const peersEnv = (env.BENCH_PEERS ?? '').trim().toLowerCase();
  const clusterUrls = (env.COUCHDB_CLUSTER_URLS ?? '').split(/\s+/).filter(Boolean);
  const args: BenchArgs = {
    only: env.BENCH_ONLY ? parseOnly(env.BENCH_ONLY) : undefined,
    w3Tasks: positiveInteger(env.W3_TASKS ?? env.BENCH_W3 ?? String(DEFAULT_W3_TASKS), 'W3_TASKS'),
    w6Tasks: positiveInteger(env.BENCH_W6 ?? String(DEFAULT_W3_TASKS), 'BENCH_W6'),
    w4Seconds: 60,
    w5Tasks: positiveInteger(env.BENCH_W5 ?? String(DEFAULT_W5_TASKS), 'BENCH_W5'),
    w5Instances: (env.BENCH_W5_INSTANCES ?? '1,2,3').split(',').map((count) => positiveInteger(count.trim(), 'BENCH_W5_INSTANCES')),
    concurrency: 200,
    profileDir: env.BENCH_PROFILE || undefined,
    peers: peersEnv === '' ? undefined : !['0', 'false', 'no', 'off'].includes(peersEnv),
    serverUrls: clusterUrls.length > 0 ? clusterUrls : env.COUCHDB_URL ? [env.COUCHDB_URL] : [],
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value; ${USAGE}`);
      return next;
    };
    if (flag === '--only') args.only = parseOnly(value());
    else if (flag === '--w3-tasks') args.w3Tasks = positiveInteger(value(), flag);
    else if (flag === '--w6-tasks') args.w6Tasks = positiveInteger(value(), flag);
    else if (flag === '--w4-seconds') args.w4Seconds = positiveInteger(value(), flag);
    else if (flag === '--concurrency') args.concurrency = positiveInteger(value(), flag);
    else if (flag === '--profile') args.profileDir = value();
    else if (flag === '--peers') args.peers = true;
    else if (flag === '--no-peers') args.peers = false;
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${flag}; ${USAGE}`);
  }
  return args;
}

function parseOnly(text: string): Workload[] {
  const names = text.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  for (const name of names) {
    if (!(WORKLOADS as readonly string[]).includes(name)) throw new Error(`unknown workload ${JSON.stringify(name)}; choose from ${WORKLOADS.join(', ')}`);
  }
  return names as Workload[];
}

function positiveInteger(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what} must be a positive integer, not ${JSON.stringify(text)}`);
  return value;
}

function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** One line naming what was measured and when, printed above the table. */
function runHeading(server: BenchServer): string {
  let head = 'unknown';
  try {
    head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  const load = os.loadavg().map((value) => value.toFixed(1)).join(' ');
  return `After bench on ${server.description}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, HEAD ${head}, ${os.cpus().length} cores, load average at the start ${load}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), process.env);
  let server: BenchServer | undefined;
  cleanUpOnInterrupt(() => server);
  server = args.serverUrls.length > 0 ? await couchdbServer(args.serverUrls) : await startEmbeddedServer();
  const only = args.only ?? (server.kind === 'cluster' ? DEFAULT_CLUSTER_WORKLOADS : DEFAULT_WORKLOADS);
  if (only.includes('w5') && server.kind !== 'cluster') {
    await server.stop();
    throw new Error('W5 runs on a CouchDB cluster: set COUCHDB_CLUSTER_URLS to its node URLs (../shared/couchdb/couchdb.sh cluster url)');
  }
  const heading = runHeading(server);
  progress(`${server.description} at ${server.displayUrls.join(' ')}${server.pid ? ` (pid ${server.pid})` : ''}; worker concurrency ${args.concurrency}; ${only.join(', ')}`);
  const started = Date.now();
  const rows: Row[] = [];
  const common = { concurrency: args.concurrency, profileDir: args.profileDir };
  const bench = server;
  const withPeers = args.peers ?? server.kind === 'embedded';
  const peers: PeerBench | undefined = withPeers && only.some((name) => name === 'w1' || name === 'w2') ? peerBench(progress) : undefined;
  const runs: Record<Workload, () => Promise<Row[]>> = {
    w1: () => runBurst(bench, { ...common, tasks: W1_TASKS }),
    w1b: () => runMidnight(bench, { ...common, tasks: W1_TASKS }),
    w2: () => runPrecision(bench, { ...common, tasks: W2_TASKS, spreadMs: W2_SPREAD_MS }),
    w3: () => runScale(bench, { ...common, tasks: args.w3Tasks, rssAfterMs: 60_000, onProgress: progress }),
    w4: () => runSteady(bench, { ...common, ratePerSecond: 200, durationMs: args.w4Seconds * 1000 }),
    w5: () => runScaleOut(bench, { ...common, tasks: args.w5Tasks, instances: args.w5Instances, onProgress: progress }),
    rl: () => runRateLimit(bench, { ...common, perSecond: 30, durationMs: 60_000 }),
    w6: () => runDashboard(bench, { ...common, tasks: args.w6Tasks, onProgress: progress }),
  };
  // Each peer runs right after After's own run of the same workload, never at the same time.
  const peerRuns: Partial<Record<Workload, (bench: PeerBench) => Promise<Row[]>>> = {
    w1: (bench) => bench.rowsFor('W1 burst', (peer) => runPeerBurst(peer, { tasks: W1_TASKS, concurrency: args.concurrency })),
    w2: (bench) =>
      bench.rowsFor('W2 precision', (peer) => runPeerPrecision(peer, { tasks: W2_TASKS, spreadMs: W2_SPREAD_MS, concurrency: args.concurrency })),
  };
  let failed = false;
  try {
    for (const workload of WORKLOADS.filter((name) => only.includes(name))) {
      progress(`running ${workload.toUpperCase()}`);
      const workloadStarted = Date.now();
      try {
        rows.push(...(await runs[workload]()));
      } catch (err) {
        failed = true;
        rows.push({ workload: workload.toUpperCase(), figure: 'failed', value: (err as Error).message.split('\n')[0]!, met: false });
      }
      progress(`${workload.toUpperCase()} took ${((Date.now() - workloadStarted) / 1000).toFixed(0)} s`);
      if (peers) rows.push(...((await peerRuns[workload]?.(peers)) ?? []));
    }
  } finally {
    try {
      await server.stop();
    } finally {
      await peers?.stop();
    }
  }
  progress(`the whole run took ${Math.round((Date.now() - started) / 60_000)} min`);
  process.stdout.write(`\n${heading}\n\n${formatTable(rows).join('\n')}\n`);
  const peerNotes = peers?.setupNotes() ?? [];
  if (peerNotes.length > 0) process.stdout.write(`\n${peerNotes.map((note) => `- ${note}`).join('\n')}\n`);
  if (failed) process.exitCode = 1;
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});

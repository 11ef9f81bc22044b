/**
 * `make bench` (node dist/bench/run.js): W1–W4 and RL (a rate limit shared by three instances)
 * against a fresh embedded database, one table.
 *
 *   node dist/bench/run.js [--only w1,w2,w3,w4,rl] [--w3-tasks N] [--w4-seconds S]
 *                          [--concurrency N] [--profile DIR] [--peers | --no-peers]
 *
 * Environment (so `make bench W3_TASKS=200000` works): W3_TASKS, BENCH_W3 (same: the full
 * figure is BENCH_W3=1000000), BENCH_ONLY, BENCH_PROFILE, BENCH_PEERS=0 (no peers).
 *
 * W1 and W2 also run on the peers (BullMQ/Redis, pg-boss/PostgreSQL, bench/peers/) when they
 * are installed (`make bench-peers-setup`), in the same table; a peer that is not installed
 * gets a row saying what to install.
 */
import { startBenchServer } from './harness';
import { peerBench, runPeerBurst, runPeerPrecision, type PeerBench } from './peers';
import { formatTable, type Row } from './report';
import { runBurst } from './workloads/burst';
import { runPrecision } from './workloads/precision';
import { runRateLimit } from './workloads/rate-limit';
import { runScale } from './workloads/scale';
import { runSteady } from './workloads/steady';

const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'rl'] as const;
type Workload = (typeof WORKLOADS)[number];

interface BenchArgs {
  only: Workload[];
  w3Tasks: number;
  w4Seconds: number;
  concurrency: number;
  profileDir: string | undefined;
  /** Run W1 and W2 on the peers too (those installed). */
  peers: boolean;
}

/**
 * W3's default keeps `make bench` within minutes: pouchdb-server loads about ten thousand
 * documents a second on a small machine and builds its indexes more slowly; a million is
 * BENCH_W3=1000000.
 */
const DEFAULT_W3_TASKS = 100_000;
const USAGE =
  'usage: node dist/bench/run.js [--only w1,w2,w3,w4,rl] [--w3-tasks N] [--w4-seconds S] [--concurrency N] [--profile DIR] [--peers | --no-peers]';
/** The same counts for After and for the peers. */
const W1_TASKS = 3000;
const W2_TASKS = 600;
const W2_SPREAD_MS = 20_000;

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): BenchArgs {
  const args: BenchArgs = {
    only: parseOnly(env.BENCH_ONLY ?? WORKLOADS.join(',')),
    w3Tasks: positiveInteger(env.W3_TASKS ?? env.BENCH_W3 ?? String(DEFAULT_W3_TASKS), 'W3_TASKS'),
    w4Seconds: 60,
    concurrency: 200,
    profileDir: env.BENCH_PROFILE || undefined,
    peers: !['0', 'false', 'no', 'off'].includes((env.BENCH_PEERS ?? '').trim().toLowerCase()),
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), process.env);
  const server = await startBenchServer();
  progress(`embedded server at ${server.url} (pid ${server.pid}); worker concurrency ${args.concurrency}`);
  const rows: Row[] = [];
  const common = { concurrency: args.concurrency, profileDir: args.profileDir };
  const peers: PeerBench | undefined = args.peers && args.only.some((name) => name === 'w1' || name === 'w2') ? peerBench(progress) : undefined;
  const runs: Record<Workload, () => Promise<Row[]>> = {
    w1: () => runBurst(server, { ...common, tasks: W1_TASKS }),
    w2: () => runPrecision(server, { ...common, tasks: W2_TASKS, spreadMs: W2_SPREAD_MS }),
    w3: () => runScale(server, { ...common, tasks: args.w3Tasks, rssAfterMs: 60_000, onProgress: progress }),
    w4: () => runSteady(server, { ...common, ratePerSecond: 200, durationMs: args.w4Seconds * 1000 }),
    rl: () => runRateLimit(server, { ...common, perSecond: 30, durationMs: 60_000 }),
  };
  // Each peer runs right after After's own run of the same workload, never at the same time.
  const peerRuns: Partial<Record<Workload, (bench: PeerBench) => Promise<Row[]>>> = {
    w1: (bench) => bench.rowsFor('W1 burst', (peer) => runPeerBurst(peer, { tasks: W1_TASKS, concurrency: args.concurrency })),
    w2: (bench) =>
      bench.rowsFor('W2 precision', (peer) => runPeerPrecision(peer, { tasks: W2_TASKS, spreadMs: W2_SPREAD_MS, concurrency: args.concurrency })),
  };
  let failed = false;
  try {
    for (const workload of WORKLOADS.filter((name) => args.only.includes(name))) {
      progress(`running ${workload.toUpperCase()}`);
      const started = Date.now();
      try {
        rows.push(...(await runs[workload]()));
      } catch (err) {
        failed = true;
        rows.push({ workload: workload.toUpperCase(), figure: 'failed', value: (err as Error).message.split('\n')[0]!, met: false });
      }
      progress(`${workload.toUpperCase()} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
      if (peers) rows.push(...((await peerRuns[workload]?.(peers)) ?? []));
    }
  } finally {
    try {
      await server.stop();
    } finally {
      await peers?.stop();
    }
  }
  process.stdout.write(`\n${formatTable(rows).join('\n')}\n`);
  const peerNotes = peers?.setupNotes() ?? [];
  if (peerNotes.length > 0) process.stdout.write(`\n${peerNotes.map((note) => `- ${note}`).join('\n')}\n`);
  if (failed) process.exitCode = 1;
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});

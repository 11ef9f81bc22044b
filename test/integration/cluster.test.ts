/**
 * docs/spec.md §7 "Claims in a cluster" on a real 3-node CouchDB cluster: instances of one worker name,
 * each connected to a different node, race for the same claims. Two claims from one `_rev`
 * sent through different nodes can both be accepted (one 201, one 202); the store confirms a
 * 202 with a read of every copy and stands down (deleting its losing branch), so every side
 * effect still happens exactly once and no stored conflict is left behind.
 *
 * Runs only with COUCHDB_CLUSTER_URLS set (`make test-cluster`, see the Makefile).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeServer } from '../../src/store/connection';
import type { TaskDoc } from '../../src/types';
import {
  iso,
  isAlive,
  postTasks,
  readRecords,
  runCli,
  startWorker,
  stopWorkers,
  useSuiteDb,
  waitFor,
  waitForAll,
  waitForDoc,
  waitForStatus,
  type TestDb,
  type WorkerProcess,
} from '../helpers/index';
import { clusterHome, clusterScript, clusterUrls, mapLimited, nodePid, onNode } from '../helpers/cluster';

const TASKS = 500;
const SPREAD_MS = 3_000;

type StoredDoc = TaskDoc & { _conflicts?: string[]; _deleted_conflicts?: string[] };

/** What the instances printed (and `facts`), kept in a temp folder past the database's deletion. */
function keepOutput(started: WorkerProcess[], facts: unknown): string {
  const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'after-cluster-'));
  started.forEach((w, node) => fs.writeFileSync(path.join(kept, `instance-${node + 1}.log`), `${w.instance}\n${w.child.stdout}${w.child.stderr}`));
  fs.writeFileSync(path.join(kept, 'facts.json'), JSON.stringify(facts, null, 2));
  return kept;
}

describe('claims on a 3-node CouchDB cluster (needs COUCHDB_CLUSTER_URLS)', function () {
  this.timeout(300_000);
  const urls = clusterUrls();
  before(function () {
    if (!urls) {
      console.log('      skipped: set COUCHDB_CLUSTER_URLS to the node URLs `couchdb.sh cluster start` prints');
      this.skip();
    }
    expect(urls.length, 'COUCHDB_CLUSTER_URLS: one URL per node').to.be.at.least(2);
  });
  // debug: the instances log every claim they lost ("changed by another writer during claim").
  const db = useSuiteDb({ url: urls?.[0], init: false, config: { log: { level: 'debug' } } });
  let nodes: TestDb[];
  before(async () => {
    nodes = urls!.map((url) => onNode(db, url));
    const init = await runCli(['init'], { env: db.env });
    expect(init.code, `after init: ${init.stderr}`).to.equal(0);
  });

  /** An instance of `name` connected to node `node`. */
  const start = (name: string, node: number, args: string[] = []): Promise<WorkerProcess> => startWorker(nodes[node]!, name, { args });

  it('the database is replicated on every node (n = 3) and each node is detected as a cluster', async () => {
    const info = await db.request<{ cluster?: { n?: number } }>('GET', '');
    expect(info.body.cluster?.n, 'cluster.n of the test database').to.equal(3);
    for (const node of nodes) {
      const conn = node.connect();
      try {
        const { info: server, replicas } = await probeServer(conn);
        expect(server.kind).to.equal('couchdb');
        expect(server.clustered, `${node.displayUrl} detected as a cluster`).to.equal(true);
        expect(replicas).to.equal(3);
      } finally {
        conn.close();
      }
    }
  });

  interface DrainFacts {
    duplicated: number;
    lost: number;
    conflicts: number;
    lostClaims: number;
  }

  /**
   * TASKS tasks due within SPREAD_MS, with one instance of `name` on each of `onNodes`; checks
   * every side effect happened once, every task is done, and no stored conflict is left.
   * `meanwhile` runs while the instances drain (a node stopped, say).
   */
  async function drain(name: string, onNodes: number[], meanwhile?: () => Promise<void>): Promise<DrainFacts> {
    // A short lease: a claim that stood down (202) is taken over once its lease has run out.
    const started = await Promise.all(onNodes.map((node) => start(name, node, ['--lease', '5000'])));
    expect(new Set(started.map((w) => w.instance)).size).to.equal(onNodes.length);
    const firstDate = Date.now() + 1_500;
    const tasks = Array.from({ length: TASKS }, (_, k) => ({
      worker: name,
      date: iso(firstDate + Math.floor((k * SPREAD_MS) / TASKS)),
      job: 'records',
    }));
    const ids = await postTasks(nodes[onNodes[0]!]!, tasks);
    const during = meanwhile?.();
    const live = onNodes.map((node) => nodes[node]!);
    await waitForAll(live[0]!, name, ids, 'done', 150_000).catch((err: Error) => {
      console.log(`      instance output kept in ${keepOutput(started, { ids })}`);
      throw err;
    });
    await during;
    // A claim that stood down keeps its branch when it sorts highest, and deletes it once the
    // owner's branch has grown past it (looked at again 2, 7, 22 s later): the conflicts go
    // while the instances run.
    await waitFor(
      async () => {
        const counts = await Promise.all(live.map(async (node) => (await node.request<{ rows: Array<{ doc?: StoredDoc }> }>('GET', '_all_docs?include_docs=true&conflicts=true')).body.rows.filter((row) => (row.doc?._conflicts ?? []).length > 0).length));
        return counts.every((count) => count === 0) ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1_000, what: 'the stored conflicts to be cleared' },
    ).catch(() => undefined);
    // A duplicate run by an instance that wrongly thought it owned a claim may still be going
    // when the winner's `done` shows: stop them all (a stop lets runs finish) before counting.
    await stopWorkers(started);

    const records = readRecords();
    const runsOf = new Map<string, number>();
    for (const r of records) runsOf.set(r.id, (runsOf.get(r.id) ?? 0) + 1);
    const duplicated = [...runsOf].filter(([, runs]) => runs > 1);
    const lost = ids.filter((id) => !runsOf.has(id));

    // Every copy of every document, read through every node.
    const docs = await mapLimited(ids, 8, async (id) => {
      const res = await live[ids.indexOf(id) % live.length]!.request<StoredDoc>('GET', `${encodeURIComponent(id)}?conflicts=true&deleted_conflicts=true`);
      expect(res.status, `GET ${id}`).to.equal(200);
      return res.body;
    });
    const conflicted = docs.filter((doc) => (doc._conflicts ?? []).length > 0);
    const perNodeConflicts = await Promise.all(
      live.map(async (node) => {
        const res = await node.request<{ rows: Array<{ doc?: StoredDoc }> }>('GET', '_all_docs?include_docs=true&conflicts=true');
        return res.body.rows.filter((row) => (row.doc?._conflicts ?? []).length > 0).length;
      }),
    );
    const resolved = docs.reduce((sum, doc) => sum + (doc._deleted_conflicts ?? []).length, 0);
    const byInstance = new Map<string, number>(started.map((w) => [w.instance, 0]));
    for (const doc of docs) if (doc.last_run) byInstance.set(doc.last_run.instance, (byInstance.get(doc.last_run.instance) ?? 0) + 1);
    const lostClaims = started.map((w) => (`${w.child.stdout}${w.child.stderr}`.match(/changed by another writer during (claim|schedule)/g) ?? []).length);
    const contested = started.map((w) => (`${w.child.stdout}${w.child.stderr}`.match(/reached fewer copies than a quorum \(202\); standing down/g) ?? []).length);
    const warnings = started.map((w) => (`${w.child.stdout}${w.child.stderr}`.match(/ warn\b.*/g) ?? []).filter((line) => !/clock/.test(line)));
    const lastFinish = Math.max(...docs.map((doc) => Date.parse(doc.last_run?.finished_at ?? '')).filter(Number.isFinite));
    console.log(
      `      ${TASKS} tasks, ${started.length} instances (one per node): ${records.length} side effects, ` +
        `${(lostClaims.reduce((a, b) => a + b, 0) / TASKS).toFixed(3)} claims lost per task (${lostClaims.join('/')}), ${contested.join('/')} stood down on a 202, ` +
        `${duplicated.length} duplicated, ${lost.length} lost, ${conflicted.length} conflicts left (per node _all_docs: ${perNodeConflicts.join('/')}), ` +
        `${resolved} losing branches deleted; claims lost ${lostClaims.join('/')}; ` +
        `drained ${lastFinish - firstDate} ms after the first date (last date +${lastFinish - (firstDate + SPREAD_MS)} ms); ` +
        `split ${[...byInstance.values()].join('/')}`,
    );
    for (const lines of warnings) for (const line of lines.slice(0, 5)) console.log(`      instance warning: ${line}`);
    if (duplicated.length + lost.length + conflicted.length > 0) {
      // What the instances said about the tasks that went wrong, kept past the database's deletion.
      const kept = keepOutput(started, { duplicated, lost, conflicted, docs: docs.filter((doc) => runsOf.get(doc._id) !== 1) });
      console.log(`      instance output and the documents concerned kept in ${kept}`);
    }

    expect(duplicated, 'tasks whose side effect happened more than once').to.deep.equal([]);
    expect(lost, 'tasks whose side effect never happened').to.deep.equal([]);
    expect(records).to.have.length(TASKS);
    for (const doc of docs) {
      expect(doc.status, `task ${doc._id}`).to.equal('done');
      expect(doc.executions, `executions of task ${doc._id}`).to.equal(1);
      expect(doc.lease, `lease of task ${doc._id}`).to.equal(undefined);
    }
    expect(conflicted.map((doc) => `${doc._id}: ${doc._rev} vs ${(doc._conflicts ?? []).join(',')}`), 'documents left with stored conflicts').to.deep.equal([]);
    expect(perNodeConflicts.every((count) => count === 0), 'conflicts in _all_docs of some node').to.equal(true);
    for (const w of started) expect(byInstance.get(w.instance), `runs by ${w.instance}`).to.be.above(0);
    return { duplicated: duplicated.length, lost: lost.length, conflicts: conflicted.length, lostClaims: lostClaims.reduce((a, b) => a + b, 0) };
  }

  it(`${TASKS} tasks due within ${SPREAD_MS / 1000} s, 2 instances on 2 nodes: each side effect once, all done, no conflict left, few claims lost`, async () => {
    const facts = await drain('pair', [0, 1]);
    expect(facts.lostClaims / TASKS, 'claims lost to contention per task').to.be.below(0.05);
  });

  it(`${TASKS} tasks due within ${SPREAD_MS / 1000} s, 3 instances, one per node: each side effect once, all done, no conflict left, few claims lost`, async () => {
    const facts = await drain('trio', [0, 1, 2]);
    expect(facts.lostClaims / TASKS, 'claims lost to contention per task').to.be.below(0.05);
  });

  it('a node stopped while tasks are due and running: every task still runs, once (instances on the other two nodes)', async function () {
    const script = clusterScript();
    if (!script) {
      console.log('      skipped: ../shared/couchdb/couchdb.sh (COUCHDB_SCRIPT) is needed to stop and restart a node');
      this.skip();
    }
    const stopped = nodePid(3);
    if (stopped === undefined) {
      console.log(`      skipped: no pid file for node 3 under ${clusterHome()}`);
      this.skip();
    }
    try {
      await drain('one-down', [0, 1], async () => {
        // While the first tasks run: node 3 goes away (SIGTERM to its pid, as couchdb.sh stops it).
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        process.kill(stopped!, 'SIGTERM');
        await waitFor(async () => !isAlive(stopped!), { timeoutMs: 30_000, what: 'node 3 to stop' });
      });
    } finally {
      // Bring it back for whatever runs next (couchdb.sh starts the nodes that are not running).
      execFileSync(script!, ['cluster', 'start'], { stdio: 'ignore', timeout: 120_000 });
    }
  });

  it('kill -9 of the instance running a task: the instance on another node takes it over after the lease, and it ends done', async () => {
    const leaseMs = 3_000;
    const victim = await start('crashy', 0, ['--lease', String(leaseMs)]);
    const [slow] = await postTasks(db, [{ worker: 'crashy', date: iso(Date.now()), job: { name: 'slow', arguments: [4_000] } }]);
    const running = await waitForStatus(db, slow!, 'running');
    expect(running.lease?.instance).to.equal(victim.instance);
    const survivor = await start('crashy', 1, ['--lease', String(leaseMs)]);

    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.child.exited;
    const stillHeld = (await nodes[2]!.request<TaskDoc>('GET', slow!)).body;
    expect(stillHeld.status, 'before the lease expires').to.equal('running');
    expect(stillHeld.lease?.instance).to.equal(victim.instance);

    await waitForDoc(nodes[2]!, slow!, (doc) => doc.status === 'running' && doc.lease?.instance === survivor.instance, leaseMs + 5_000, 'run again by the survivor');
    const done = await waitForStatus(nodes[2]!, slow!, 'done', 15_000);
    expect(done.last_run?.instance).to.equal(survivor.instance);
    expect(done.executions).to.equal(1);
    const takeoverMs = Date.parse(done.last_run!.started_at) - killedAt;
    expect(takeoverMs, 'kill -9 to second run start').to.be.below(leaseMs + 3_000);
    const stored = (await nodes[1]!.request<StoredDoc>('GET', `${encodeURIComponent(slow!)}?r=3&conflicts=true`)).body;
    expect(stored._conflicts ?? [], 'stored conflicts').to.deep.equal([]);
    console.log(`      lease ${leaseMs} ms: second run started ${takeoverMs} ms after kill -9 (survivor on another node)`);
  });
});

/**
 * W6 dashboard: the dashboard at scale, measured as a user meets it, in headless Chromium
 * (Debian's chromium through playwright-core, like the dashboard's tests). N tasks (100,000 by
 * default; BENCH_W6=1000000 for a million) loaded with W3's loader over three worker names and
 * four jobs, most due in the coming year, some done, some failed; `after init`; the indexes
 * built in the background (how long that takes after a bulk load is a row); then `after ui`:
 *
 * - first paint with counts: from navigation start until the counts table is drawn (< 1 s);
 * - `after status`: the whole command, spawned (< 1 s);
 * - a list page (the first, then the next ones by the keyset cursor) and a search by id
 *   prefix, from the click until the rows are drawn (< 300 ms);
 * - a W1 burst (3,000 tasks due at once for a running worker) with the overview open: the
 *   longest task on the browser's main thread (PerformanceObserver `longtask`, ≤ 100 ms) and
 *   whether the page's counts followed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchTask, startWorker, waitForDrain, type BenchDb, type BenchServer } from '../harness';
import { ms, seconds, type Row } from '../report';
import { AFTER_BIN, REPO_ROOT, trackPid, withoutAfterVariables } from '../server';
import type { WorkloadOptions } from './options';
import { load, loadSettings } from './scale';

const CHROMIUM = '/usr/bin/chromium';
const WORKERS = ['bench', 'mailer', 'reports'];
const JOBS = ['stamp', 'send_email', 'build_report', 'sync'];
const BURST = 3000;
const YEAR_MS = 365 * 24 * 3600_000;
/** The views a page reads, brought up to date before anything is measured. */
const VIEWS_EMBEDDED = ['_design/after-lists/_view/tasks'];
/** CouchDB's partial indexes are left out: their update sequence never says whether they are built (store/read-views.ts). */
const VIEWS_COUCHDB = ['_design/after-status-date/_view/status-date', '_design/after-worker-status-date/_view/worker-status-date', '_design/after-job-status-date/_view/job-status-date'];

/** A loaded task: W3's pending tasks, with other workers and jobs, and a few finished ones. */
function dashboardTask(i: number, nowMs: number): object {
  const id = `w6-${String(i).padStart(8, '0')}`;
  const task = benchTask(id, nowMs + 600_000 + Math.floor(Math.random() * YEAR_MS)) as unknown as Record<string, unknown>;
  task.worker = WORKERS[i % WORKERS.length];
  task.job = { name: JOBS[i % JOBS.length] };
  if (i % 50 === 7) Object.assign(task, { status: 'done', date: new Date(nowMs - Math.random() * 30 * 86_400_000).toISOString(), executions: 1 });
  if (i % 200 === 11) Object.assign(task, { status: 'error', date: new Date(nowMs - Math.random() * 86_400_000).toISOString(), error: { message: 'gave up' } });
  return task;
}

export async function runDashboard(server: BenchServer, options: WorkloadOptions & { tasks: number; onProgress(line: string): void }): Promise<Row[]> {
  const name = 'W6 dashboard';
  if (!fs.existsSync(CHROMIUM)) return [{ workload: name, figure: 'skipped', value: `${CHROMIUM} is missing (make chromium)` }];
  const db = await server.newDb('w6', { init: 'bare' });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'after-bench-chromium-'));
  try {
    const loadStart = Date.now();
    await load(db, options.tasks, loadSettings(server), (line) => options.onProgress(`W6: ${line}`), dashboardTask);
    const loadMs = Date.now() - loadStart;
    await db.init();
    options.onProgress(`W6: ${options.tasks} tasks loaded in ${seconds(loadMs)}; waiting for the indexes`);
    const indexStart = Date.now();
    await untilIndexed(db, server.kind === 'embedded' ? VIEWS_EMBEDDED : VIEWS_COUCHDB, server.kind === 'embedded' ? 'stale=update_after' : 'update=lazy', options.onProgress);
    const indexMs = Date.now() - indexStart;

    return [
      { workload: name, figure: `load ${options.tasks} tasks (W3's loader), then the indexes built in the background`, value: `${seconds(loadMs)} + ${seconds(indexMs)}` },
      ...(await measureDashboard(db, { concurrency: options.concurrency, profile })),
    ];
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
    await db.destroy();
  }
}

/** The figures of a loaded database whose indexes are built. */
export async function measureDashboard(db: BenchDb, options: { concurrency: number; profile: string }): Promise<Row[]> {
  const name = 'W6 dashboard';
  const { chromium } = await import('playwright-core');
  const profile = options.profile;
  let ui: { child: ChildProcess; url: string } | undefined;
  try {
    ui = await startUi(db);
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'], viewport: { width: 1280, height: 900 } });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      // First paint with counts, twice (the first of a browser, then a reload).
      const paints: number[] = [];
      for (let i = 0; i < 2; i++) {
        await page.goto(ui.url);
        paints.push(await markTime(page, 'after:counts'));
      }
      const statusMs = await timeStatus(db);
      // A list page: the first of a worker's waiting tasks, then five next pages.
      const listMs: number[] = [];
      listMs.push(await timeNavigation(page, `#/tasks?status=waiting&worker=mailer&limit=50`, 'after:list'));
      for (let i = 0; i < 5; i++) listMs.push(await timeClick(page, '#next-page', 'after:list'));
      listMs.push(await timeNavigation(page, `#/tasks?status=waiting&job=sync&order=desc&limit=100`, 'after:list'));
      const searchMs = await timeNavigation(page, '#/search?q=w6-00001', 'after:search');

      // The W1 burst with the overview open.
      await page.goto(ui.url);
      await markTime(page, 'after:counts');
      await page.evaluate(() => {
        const w = globalThis as unknown as { longTasks: number[]; PerformanceObserver: new (cb: (list: { getEntries(): Array<{ duration: number }> }) => void) => { observe(o: object): void } };
        w.longTasks = [];
        new w.PerformanceObserver((list) => w.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: false });
      });
      const worker = startWorker(db, { concurrency: options.concurrency });
      let drainMs = Number.NaN;
      try {
        await worker.ready;
        const now = Date.now();
        const burst = Array.from({ length: BURST }, (_, i) => benchTask(`w6-burst-${String(i).padStart(5, '0')}`, now));
        const start = Date.now();
        await db.bulkDocs(burst);
        const drain = await waitForDrain(worker, BURST, 120_000);
        drainMs = drain.lastDoneAtMs - start;
      } finally {
        await worker.stop();
      }
      // The page follows within a few seconds: its counts show the burst done.
      const followed = await page
        .waitForFunction((expected) => {
          const cell = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('#counts tr[data-worker="bench"] td[data-status="done"]');
          return cell !== null && Number(cell.textContent.replace(/,/g, '')) >= expected;
        }, BURST, { timeout: 15_000 })
        .then(() => true, () => false);
      const longTasks = await page.evaluate(() => (globalThis as unknown as { longTasks: number[] }).longTasks);
      const longest = Math.max(0, ...longTasks);
      return [
        { workload: name, figure: 'overview: first paint with counts (first, reload)', value: paints.map(ms).join(', '), target: '< 1 s', met: Math.max(...paints) < 1000 },
        { workload: name, figure: 'after status (the whole command)', value: ms(statusMs), target: '< 1 s', met: statusMs < 1000 },
        { workload: name, figure: 'list page: first, 5 next (keyset), by job (max)', value: `${ms(listMs[0]!)}, ${ms(Math.max(...listMs.slice(1, 6)))}, ${ms(listMs[6]!)} (${ms(Math.max(...listMs))})`, target: '< 300 ms', met: Math.max(...listMs) < 300 },
        { workload: name, figure: 'search by id prefix', value: ms(searchMs), target: '< 300 ms', met: searchMs < 300 },
        { workload: name, figure: `W1 burst of ${BURST} with the overview open: drain`, value: seconds(drainMs) },
        { workload: name, figure: 'W1 burst: longest main-thread task, tasks > 50 ms', value: `${ms(longest)}, ${longTasks.length}`, target: '≤ 100 ms', met: longest <= 100 },
        { workload: name, figure: 'W1 burst: the page\'s counts followed', value: followed ? 'yes' : 'no', target: 'yes', met: followed },
      ];
    } finally {
      await browser.close();
    }
  } finally {
    if (ui) await stopChild(ui.child);
  }
}

/** Until every view answers up to date (read with update=lazy / stale=ok, compared with the database's seq). */
async function untilIndexed(db: BenchDb, views: readonly string[], noWait: string, onProgress: (line: string) => void): Promise<void> {
  const seqOf = (seq: unknown): number => parseInt(String(seq), 10) || 0;
  const deadline = Date.now() + 3 * 3600_000;
  let reported = 0;
  for (;;) {
    const dbSeq = seqOf((await db.request<{ update_seq: unknown }>('GET', '')).update_seq);
    let behind = 0;
    for (const view of views) {
      const answer = await db.request<{ update_seq?: unknown }>('GET', `${view}?limit=0&reduce=false&update_seq=true&${noWait}`);
      behind = Math.max(behind, dbSeq - seqOf(answer.update_seq));
    }
    if (behind <= 0) return;
    if (Date.now() > deadline) throw new Error(`the indexes were still ${behind} changes behind after 3 hours`);
    if (Date.now() - reported > 30_000) {
      reported = Date.now();
      onProgress(`W6: the indexes are ${behind} changes behind`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function startUi(db: BenchDb): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [AFTER_BIN, 'ui', '--port', '0'], { cwd: REPO_ROOT, env: { ...withoutAfterVariables(process.env), ...db.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const untrack = trackPid(child.pid!);
  child.once('exit', untrack);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`after ui did not start: ${out}`)), 30_000);
    const onData = (text: Buffer): void => {
      out += text.toString();
      const match = /dashboard at (http:\/\/\S+\/)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  return { child, url };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function timeStatus(db: BenchDb): Promise<number> {
  const start = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [AFTER_BIN, 'status'], { cwd: REPO_ROOT, env: { ...withoutAfterVariables(process.env), ...db.env }, stdio: 'ignore' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`after status exited ${code}`))));
  });
  return Date.now() - start;
}

type Page = import('playwright-core').Page;

/** When the page set `mark` (ms since its navigation started), waiting for it. */
async function markTime(page: Page, mark: string): Promise<number> {
  const handle = await page.waitForFunction((name) => {
    const entry = (globalThis as unknown as { performance: { getEntriesByName(n: string): Array<{ startTime: number }> } }).performance.getEntriesByName(name)[0];
    return entry ? entry.startTime : false;
  }, mark, { timeout: 60_000 });
  return Number(await handle.jsonValue());
}

/** From a hash change to `mark` (the page drew the rows). */
async function timeNavigation(page: Page, hash: string, mark: string): Promise<number> {
  const started = await page.evaluate(([to, name]) => {
    const w = globalThis as unknown as { performance: { clearMarks(n: string): void; now(): number }; location: { hash: string } };
    w.performance.clearMarks(name!);
    const t = w.performance.now();
    w.location.hash = to!;
    return t;
  }, [hash, mark]);
  return (await markTime(page, mark)) - started;
}

async function timeClick(page: Page, selector: string, mark: string): Promise<number> {
  const started = await page.evaluate(([sel, name]) => {
    const w = globalThis as unknown as { performance: { clearMarks(n: string): void; now(): number }; document: { querySelector(s: string): { click(): void } } };
    w.performance.clearMarks(name!);
    const t = w.performance.now();
    w.document.querySelector(sel!).click();
    return t;
  }, [selector, mark]);
  return (await markTime(page, mark)) - started;
}

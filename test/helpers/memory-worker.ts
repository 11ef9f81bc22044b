/**
 * Worker unit tests in one process: Worker instances on one shared in-memory database, time on a
 * fake clock. `@sinonjs/fake-timers` fakes `Date`, `setTimeout` and `clearTimeout` only: the
 * MemoryStore answers through `setImmediate`, which stays real, so the database is always "fast"
 * and time moves only when a test says so.
 *
 * Time moves like a discrete-event simulation: `until()` lets every pending answer of the
 * database and every promise settle, then fires the next fake timer, and again, until what the
 * test awaits (a worker event, a condition) has happened. A test therefore never sleeps and never
 * asserts on wall-clock timing, and the fake instants it sees are exact (a job due at 09:01:00
 * starts at 09:01:00.000).
 *
 * Each instance talks to the database through its own `Connection`, so that `kill()` can imitate
 * a `kill -9` of one instance: from then on nothing it sends reaches the database and nothing
 * comes back, while the other instances carry on.
 */
import * as os from 'node:os';
import FakeTimers from '@sinonjs/fake-timers';
import { registryFromFunctions } from '../../src/api';
import { parseConfig } from '../../src/config/load';
import { type AfterConfig } from '../../src/config/types';
import type { JobFunction } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import { MemoryStore } from '../../src/store/for-workers/memory-store';
import type { TaskDoc } from '../../src/types';
import { Worker, type WorkerEvents } from '../../src/worker/worker';
import { Connection } from './memory-connection';
import { standardJobs, type TestJob } from './test-jobs';

export { fakeDelay, type TestJob } from './test-jobs';

/** Monday 5 January 2026, 09:00:00 UTC: where every simulation's clock starts. */
export const START_MS = Date.UTC(2026, 0, 5, 9, 0, 0);

export const iso = (ms: number): string => new Date(ms).toISOString();

/** One start of a job, as the job itself saw it. */
export interface JobRun {
  id: string;
  job: string;
  /** The label of the instance that ran it (`a`, `b`...). */
  worker: string;
  /** Fake time when the job function was called. */
  atMs: number;
  signal: AbortSignal;
  doc: TaskDoc;
}

export interface SimulationOptions {
  /** `worker` section of the configuration (lease_ms, claim_grace_ms, min_repeat_ms...). */
  worker?: Record<string, unknown>;
  /** Fake milliseconds every request of every instance takes to reach the database. @default 0 */
  latencyMs?: number;
  /** `limits` section of the configuration (`{"nightly": {"rate": "5/s"}}`). */
  limits?: Record<string, unknown>;
}

export interface StartOptions {
  /** Worker name. @default 'nightly' */
  name?: string;
  /** Label in `runs` and error messages. @default a, b, c... */
  label?: string;
  /** Jobs besides the standard ones (`succeeds`, `fails`, `hangs`, `waits`, `gated`). */
  jobs?: Record<string, TestJob>;
  concurrency?: number;
  leaseMs?: number;
}

export interface SimWorker {
  label: string;
  worker: Worker;
  connection: Connection;
  stopped: boolean;
  /** Stop it, moving the fake clock until it has stopped; resolves with the fake ms it took. */
  stop(graceMs?: number): Promise<number>;
}

interface Waiter {
  name: keyof WorkerEvents;
  filter: (payload: never, label: string) => boolean;
  resolve: (value: { label: string; payload: never }) => void;
}

const open = new Set<Simulation>();

/** Register once per test file: every simulation a test opened is closed after it. */
export function closeSimulationsAfterEach(): void {
  afterEach(async () => {
    const sims = [...open];
    open.clear();
    for (const sim of sims) await sim.close();
  });
}

export class Simulation {
  readonly fake: FakeTimers.Clock;
  readonly store: MemoryStore;
  readonly config: AfterConfig;
  readonly workers: SimWorker[] = [];
  /** Every job start, in order. */
  readonly runs: JobRun[] = [];
  /** Every worker event, in order, with the fake time and the instance's label. */
  readonly events: Array<{ label: string; name: string; payload: Record<string, unknown>; atMs: number }> = [];
  /** Gates of the `gated` job: opened by task id. */
  private readonly gates = new Map<string, () => void>();
  private readonly opened = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private activity = 0;
  private taskCount = 0;
  private closed = false;
  private readonly latencyMs: number;

  constructor(options: SimulationOptions = {}) {
    this.latencyMs = options.latencyMs ?? 0;
    this.fake = FakeTimers.install({ now: START_MS, toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    this.store = new MemoryStore();
    this.config = parseConfig({ worker: options.worker ?? {}, limits: options.limits ?? {} }, { file: '(test)', base: os.tmpdir() });
    open.add(this);
  }

  get now(): number {
    return this.fake.now;
  }

  /** Two instances started (`b` defaults to `a`'s options), once each sees the other alive. */
  async startPair(a: StartOptions = {}, b: StartOptions = a): Promise<[SimWorker, SimWorker]> {
    const first = await this.start(a);
    const second = await this.start(b);
    await this.until(() => first.worker.liveInstances.length === 2 && second.worker.liveInstances.length === 2, {
      withinMs: 60_000,
      what: 'the two instances to see each other',
    });
    return [first, second];
  }

  /** A user pausing a worker name as curl would: `pause:<worker>` in the control database, with `fields`. */
  async pauseName(worker: string, fields: Record<string, unknown>): Promise<void> {
    const put = await this.store.control.put({ _id: `pause:${worker}`, worker, ...fields });
    if (!put.ok) throw new Error(`pausing ${worker}: the pause document was not written`);
  }

  /** The user resuming it: the pause document deleted. */
  async resumeName(worker: string): Promise<void> {
    const doc = await this.store.control.get(`pause:${worker}`);
    if (!doc || !(await this.store.control.remove(`pause:${worker}`, doc._rev!))) throw new Error(`resuming ${worker}: the pause document was not removed`);
  }

  /** Start an instance on its own connection to the database. */
  async start(options: StartOptions = {}): Promise<SimWorker> {
    const label = options.label ?? String.fromCharCode(97 + this.workers.length);
    const connection = new Connection(this.store, () => this.activity++);
    connection.latencyMs = this.latencyMs;
    const jobs = Object.fromEntries(
      Object.entries({ ...standardJobs, ...options.jobs }).map(([name, fn]) => [name, this.recorded(name, label, fn)]),
    );
    const worker = new Worker(
      {
        config: this.config,
        name: options.name ?? 'nightly',
        log: silentLogger(),
        ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
        ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      },
      connection,
      registryFromFunctions(jobs, this.config),
    );
    worker.events.onAny((name, payload) => {
      this.activity++;
      this.events.push({ label, name: String(name), payload: payload as Record<string, unknown>, atMs: this.fake.now });
      for (const waiter of [...this.waiters]) {
        if (waiter.name !== name || !waiter.filter(payload as never, label)) continue;
        this.waiters.delete(waiter);
        waiter.resolve({ label, payload: payload as never });
      }
    });
    const sim = this;
    const handle: SimWorker = {
      label,
      worker,
      connection,
      stopped: false,
      async stop(graceMs?: number): Promise<number> {
        const from = sim.fake.now;
        handle.stopped = true;
        await sim.until(worker.stop(graceMs === undefined ? {} : { graceMs }), { withinMs: 120_000, what: `instance ${label} to stop` });
        return sim.fake.now - from;
      },
    };
    this.workers.push(handle);
    await this.until(worker.start(), { what: `instance ${label} to start` });
    return handle;
  }

  /** The next `name` event (of any instance) whose payload passes `filter`. */
  next<K extends keyof WorkerEvents>(
    name: K,
    filter: (payload: WorkerEvents[K], label: string) => boolean = () => true,
  ): Promise<{ label: string; payload: WorkerEvents[K] }> {
    return new Promise((resolve) => {
      this.waiters.add({ name, filter: filter as Waiter['filter'], resolve: resolve as Waiter['resolve'] });
    });
  }

  /** The next `task:finished` of task `id`. */
  finished(id: string): Promise<{ label: string; payload: WorkerEvents['task:finished'] }> {
    return this.next('task:finished', (e) => e.id === id);
  }

  /** The next `task:started` of task `id`. */
  started(id: string): Promise<{ label: string; payload: WorkerEvents['task:started'] }> {
    return this.next('task:started', (e) => e.id === id);
  }

  /**
   * Move the fake clock, timer by timer, until `target` (a promise, or a condition checked after
   * every step) is met; fails when it is not met within `withinMs` of fake time.
   */
  async until<T>(target: Promise<T> | (() => boolean | Promise<boolean>), options: { withinMs?: number; what?: string } = {}): Promise<T> {
    const withinMs = options.withinMs ?? 600_000;
    let settled: { value: T } | { error: unknown } | undefined;
    if (typeof target !== 'function') {
      target.then(
        (value) => (settled = { value }),
        (error: unknown) => (settled = { error }),
      );
    }
    let timedOut = false;
    const deadline = this.fake.setTimeout(() => (timedOut = true), withinMs);
    try {
      for (;;) {
        await this.settle();
        if (settled) {
          if ('error' in settled) throw settled.error;
          return settled.value;
        }
        if (typeof target === 'function' && (await target())) return undefined as T;
        if (timedOut) throw new Error(`${options.what ?? 'the awaited event'} did not happen within ${withinMs} ms of fake time`);
        this.fake.next();
      }
    } finally {
      this.fake.clearTimeout(deadline);
    }
  }

  /** Move the fake clock to `atMs`, firing every timer due until then (and the answers they lead to). */
  async advanceTo(atMs: number): Promise<void> {
    if (atMs < this.fake.now) throw new Error(`cannot move the clock back to ${iso(atMs)}`);
    let reached = false;
    this.fake.setTimeout(() => (reached = true), atMs - this.fake.now);
    await this.until(() => reached, { withinMs: atMs - this.fake.now + 1 });
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.fake.now + ms);
  }

  /**
   * Let every answer of the database and every promise settle, without moving the clock: done
   * when nothing was sent, answered or emitted for a few turns of the event loop.
   */
  async settle(): Promise<void> {
    let seen = this.activity;
    for (let quiet = 0, turns = 0; quiet < 4 && turns < 100_000; turns++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.activity === seen) quiet++;
      else [seen, quiet] = [this.activity, 0];
    }
  }

  /** Create a task as a user would; `_id` t1, t2... unless given. Defaults: due now, job `succeeds`. */
  async post(fields: Partial<TaskDoc> = {}): Promise<TaskDoc> {
    const doc: TaskDoc = {
      _id: `t${++this.taskCount}`,
      worker: 'nightly',
      date: iso(this.fake.now),
      job: { name: 'succeeds', arguments: [] },
      status: 'waiting',
      ...fields,
    };
    const [written] = await this.store.write([{ doc }]);
    if (written!.kind !== 'written') throw new Error(`task ${doc._id} exists`);
    return written!.doc;
  }

  /** The task as the database holds it now. */
  async get(id: string): Promise<TaskDoc> {
    const doc = await this.store.get(id);
    if (!doc) throw new Error(`task ${id} does not exist`);
    return doc;
  }

  /** A user's change to a task, on its current `_rev` (again if a worker wrote meanwhile). */
  async edit(id: string, change: (doc: TaskDoc) => TaskDoc): Promise<TaskDoc> {
    for (;;) {
      const [written] = await this.store.write([{ doc: change(await this.get(id)) }]);
      if (written!.kind === 'written') return written!.doc;
    }
  }

  /** Job starts of task `id`. */
  runsOf(id: string): JobRun[] {
    return this.runs.filter((run) => run.id === id);
  }

  /** Lets the `gated` job of task `id` return (now, or as soon as it starts). */
  openGate(id: string): void {
    this.opened.add(id);
    this.gates.get(id)?.();
  }

  /** Stop every instance still running, close the database and give the real timers back. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    try {
      for (const handle of this.workers) if (!handle.stopped) await handle.stop();
      await this.store.close();
    } finally {
      this.fake.uninstall();
    }
  }

  /** @internal the `gated` job waits here. */
  gate(id: string, signal: AbortSignal): Promise<void> {
    if (this.opened.has(id)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.gates.set(id, resolve);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }

  private recorded(name: string, label: string, fn: TestJob): JobFunction {
    return (_task, ctx) => {
      this.activity++;
      this.runs.push({ id: ctx.doc._id, job: name, worker: label, atMs: Date.now(), signal: ctx.signal, doc: ctx.doc });
      return fn(ctx.doc, { ...ctx, label, sim: this });
    };
  }
}

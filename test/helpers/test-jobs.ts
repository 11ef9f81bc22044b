/**
 * Jobs of the worker unit tests, named by behaviour (STYLE.md): every simulated instance has
 * them, and a test may add its own.
 */
import type { JobContext } from '../../src/jobs/run-job';
import type { TaskDoc } from '../../src/types';
import type { Simulation } from './memory-worker';

/** A job of a test: the task document and the run's context (signal, the instance's label). */
export type TestJob = (doc: TaskDoc, ctx: JobContext & { label: string; sim: Simulation }) => unknown;

const iso = (ms: number): string => new Date(ms).toISOString();

/** Fake milliseconds (`setTimeout`, faked) that end early when `signal` aborts. */
export function fakeDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Jobs named by behaviour, in every instance. */
export const standardJobs: Record<string, TestJob> = {
  /** Returns which instance ran it and when. */
  succeeds: (doc, ctx) => ({ ran: doc._id, by: ctx.label, at: iso(Date.now()) }),
  /** Always fails with `boom` (code E_BOOM). */
  fails: () => {
    throw Object.assign(new Error('boom'), { code: 'E_BOOM' });
  },
  /** Never returns; honours its signal. */
  hangs: (_doc, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
  /** Takes `data.ms` fake milliseconds (default 1000); honours its signal. */
  waits: async (doc, ctx) => {
    const ms = (doc.data as { ms?: number } | undefined)?.ms ?? 1000;
    await fakeDelay(ms, ctx.signal);
    return { waited: ms };
  },
  /** Returns once the test opens its gate (`sim.openGate(id)`); honours its signal. */
  gated: async (doc, ctx) => {
    await ctx.sim.gate(doc._id, ctx.signal);
    return { gate: 'opened' };
  },
};

/**
 * Preloaded into the worker process (`node -r dist/bench/lag-probe.js bin/after start ...`)
 * so the bench can see the worker's event-loop delay without a line of worker code knowing
 * about it: a timer that fires late means every task due meanwhile fires late too.
 * Writes {p50, p99, max} in milliseconds to BENCH_LAG_FILE when the process exits.
 */
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.BENCH_LAG_FILE;
if (file) {
  // 10 ms: fine enough to see a stall that matters at a 25 ms target, coarse enough that the
  // probe's own timer does not show in the worker's CPU figure.
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  process.once('exit', () => {
    histogram.disable();
    const toMs = (ns: number): number => Math.round(ns / 1e4) / 100;
    const lag = { p50: toMs(histogram.percentile(50)), p99: toMs(histogram.percentile(99)), max: toMs(histogram.max) };
    fs.writeFileSync(file, `${JSON.stringify(lag)}\n`);
  });
}

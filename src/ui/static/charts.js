// The run charts, drawn by uPlot (served from the package as /vendor/uplot.js): runs done,
// failed and retried, and start lateness p50/p99, over the last 10 minutes (10-second steps,
// refreshed every 5 s), 7 days (hourly) or 90 days (daily).
import { $, number } from './dom.js';

const charts = new Map();

function colors() {
  const style = getComputedStyle(document.documentElement);
  const value = (name) => style.getPropertyValue(name).trim();
  return { done: value('--done'), failed: value('--failed'), retried: value('--retried'), accent: value('--accent'), fg: value('--fg'), line: value('--line') };
}

function options(kind, width) {
  const c = colors();
  const axis = { stroke: c.fg, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
  const series = kind === 'runs'
    ? [{}, { label: 'done', stroke: c.done, width: 2 }, { label: 'failed', stroke: c.failed, width: 2 }, { label: 'retried', stroke: c.retried, width: 2, dash: [6, 4] }]
    : [{}, { label: 'p50 ms', stroke: c.accent, width: 2, spanGaps: true, points: { show: true } }, { label: 'p99 ms', stroke: c.failed, width: 2, spanGaps: true, points: { show: true } }];
  return { width, height: 200, series, axes: [axis, { ...axis, size: 60 }], scales: { x: { time: true } }, cursor: { drag: { x: false, y: false } } };
}

function draw(target, kind, data) {
  const node = $(target);
  const width = Math.max(320, node.clientWidth || 480);
  let chart = charts.get(target);
  if (!chart || chart.kind !== kind) {
    chart?.plot.destroy();
    node.replaceChildren();
    chart = { kind, plot: new globalThis.uPlot(options(kind, width), data, node) };
    charts.set(target, chart);
  } else {
    chart.plot.setData(data);
  }
}

/** Draw a series as /api/charts returns it. */
export function drawSeries(series) {
  const xs = series.points.map((p) => p.t / 1000);
  draw('#chart-runs', 'runs', [xs, series.points.map((p) => p.done), series.points.map((p) => p.failed), series.points.map((p) => p.retried)]);
  draw('#chart-lateness', 'lateness', [xs, series.points.map((p) => p.lateP50), series.points.map((p) => p.lateP99)]);
  $('#chart-runs').dataset.points = String(series.points.filter((p) => p.done + p.failed + p.retried > 0).length);
  const t = series.total;
  $('#chart-total').textContent = `${number(t.done)} done, ${number(t.failed)} failed, ${number(t.retried)} retried; lateness p50 ${t.lateP50 ?? '–'} ms, p99 ${t.lateP99 ?? '–'} ms`;
}

/** The theme changed: charts take the new colors. */
export function resetCharts() {
  for (const chart of charts.values()) chart.plot.destroy();
  charts.clear();
}

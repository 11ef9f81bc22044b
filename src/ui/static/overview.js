// The overview: charts, counts by worker and status, workers with Pause/Resume, the activity
// of the live feed, next due and recent failures.
import { act, api, query } from './api.js';
import { drawSeries } from './charts.js';
import { $, el, fillBody, number, statusBadge, taskLink, text } from './dom.js';

const STATUS_ORDER = ['waiting', 'scheduled', 'running', 'done', 'error', 'reschedule', 'cancel', 'canceled', 'paused'];
const ACTIVITY_LIMIT = 30;
/** Changes in half a second past which the activity shows only the newest few, unanimated. */
const BURST_CHANGES = 20;
const BURST_ROWS = 10;
let firstCountsPainted = false;

export async function refreshOverview() {
  let overview;
  try {
    overview = await api('/api/overview');
  } catch (err) {
    $('#database').textContent = `cannot read the overview: ${err.message}`;
    return null;
  }
  $('#database').textContent = overview.database;
  renderCounts(overview.counts);
  $('#counts-lag').textContent = overview.countsLag > 0 ? `(the index is ${number(overview.countsLag)} changes behind; catching up)` : '';
  if (!firstCountsPainted) {
    firstCountsPainted = true;
    performance.mark('after:counts');
  }
  renderWorkers(overview);
  fillBody($('#next-due'), overview.nextDue.map((t) => el('tr', { 'data-task-id': t.id },
    el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', {}, statusBadge(t.status)),
    el('td', { text: text(t.date) }), el('td', { text: t.after ? `${text(t.job)} · after ${t.after.join(', ')}` : text(t.job) }))), 'nothing waiting', 5);
  fillBody($('#failures'), overview.failures.map((t) => el('tr', { 'data-task-id': t.id },
    el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', { text: text(t.date) }),
    el('td', { text: text(t.job) }), el('td', { class: 'error', text: text(t.error) }))), 'no failed task', 5);
  const workers = new Set([...overview.counts.map((c) => c.worker), ...overview.instances.map((i) => i.worker)]);
  const select = $('#chart-worker');
  for (const worker of [...workers].sort()) {
    if (![...select.options].some((o) => o.value === worker)) select.append(el('option', { value: worker, text: worker }));
  }
  $('#worker-names').replaceChildren(...[...workers].sort().map((w) => el('option', { value: w })));
  return overview;
}

export async function refreshCharts() {
  try {
    drawSeries(await api(`/api/charts?${query({ range: $('#chart-range').value, worker: $('#chart-worker').value })}`));
  } catch (err) {
    $('#chart-total').textContent = `charts: ${err.message}`;
  }
}

function renderCounts(counts) {
  const statuses = STATUS_ORDER.filter((s) => counts.some((c) => c.status === s));
  for (const c of counts) if (!statuses.includes(c.status)) statuses.push(c.status);
  const workers = [...new Set(counts.map((c) => c.worker))].sort();
  const table = $('#counts');
  table.querySelector('thead').replaceChildren(el('tr', {}, el('th', { text: 'Worker' }), ...statuses.map((s) => el('th', { class: 'num', text: s })), el('th', { class: 'num', text: 'total' })));
  fillBody(table, workers.map((worker) => {
    const cells = statuses.map((s) => counts.filter((c) => c.worker === worker && c.status === s).reduce((n, c) => n + c.count, 0));
    return el('tr', { 'data-worker': worker }, el('td', { text: worker }),
      ...cells.map((n, i) => el('td', { class: 'num', 'data-status': statuses[i] }, n === 0 ? '0' : el('a', { href: `#/tasks?${query({ status: listOf(statuses[i]), worker })}`, text: number(n) }))),
      el('td', { class: 'num', text: number(cells.reduce((a, b) => a + b, 0)) }));
  }), 'no tasks', statuses.length + 2);
}

/** The list a status belongs to (tasks.js's tabs). */
function listOf(status) {
  return status === 'reschedule' ? 'waiting' : status === 'cancel' ? 'canceled' : status;
}

// Every worker name the page knows of: tasks name it, an instance serves it, or it is paused.
function renderWorkers(overview) {
  const names = new Set([...overview.counts.map((c) => c.worker), ...overview.instances.map((i) => i.worker), ...overview.paused]);
  fillBody($('#workers'), [...names].sort().map((worker) => {
    const paused = overview.paused.includes(worker);
    const live = overview.instances.filter((i) => i.worker === worker).length;
    const button = el('button', { type: 'button', 'data-worker-action': paused ? 'resume' : 'pause', text: paused ? 'Resume' : 'Pause' });
    button.addEventListener('click', () => actOnWorker(worker, paused ? 'resume' : 'pause'));
    return el('tr', { 'data-worker': worker, 'data-paused': paused ? 'true' : 'false' },
      el('td', { text: worker }), el('td', { class: 'num', text: String(live) }),
      el('td', {}, el('span', { class: `status ${paused ? 'paused' : 'running'}`, text: paused ? 'paused' : 'running' })), el('td', {}, button));
  }), 'no workers yet', 4);
}

async function actOnWorker(worker, action) {
  const result = $('#worker-result');
  result.textContent = '…';
  try {
    const report = await act(`/api/workers/${encodeURIComponent(worker)}/actions`, { action });
    const what = report.paused ? 'paused: no new run starts' : 'resumed';
    result.textContent = report.changed ? `worker ${worker} ${what}` : `worker ${worker} was already ${report.paused ? 'paused' : 'running'}`;
  } catch (err) {
    result.textContent = `${action} refused: ${err.message}`;
  }
  refreshOverview();
}

/** A window of the live feed: the newest changed tasks on top, at most ACTIVITY_LIMIT rows. */
export function showActivity(batch) {
  const body = $('#activity tbody');
  body.querySelector('tr.empty')?.remove();
  // In a burst only the newest rows, and no flash: the page stays light however busy the database.
  const burst = batch.changes > BURST_CHANGES;
  const newest = batch.tasks.slice(burst ? -BURST_ROWS : -ACTIVITY_LIMIT);
  const ids = new Set(newest.map((t) => t.id));
  for (const row of [...body.children]) if (ids.has(row.dataset.taskId)) row.remove();
  const rows = newest.reverse().map((task) => el('tr', { class: burst ? undefined : 'fresh', 'data-task-id': task.id, 'data-status': task.deleted ? 'deleted' : task.status || 'waiting' },
    el('td', {}, taskLink(task.id)), el('td', { text: text(task.worker) }), el('td', {}, statusBadge(task.deleted ? 'deleted' : task.status)),
    el('td', { text: text(task.date) }), el('td', { text: text(task.job) }), el('td', { class: 'error', text: task.error || '' })));
  body.prepend(...rows);
  while (body.children.length > ACTIVITY_LIMIT) body.lastElementChild.remove();
  $('#activity-rate').textContent = `${number(batch.changes)} change(s) in the last half second`;
}

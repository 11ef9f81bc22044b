// The After dashboard page: plain JavaScript, no build step. Task documents are untrusted
// (anyone who can write to the database writes them), so every value reaches the page through
// textContent, never as HTML.
'use strict';

(function () {
  const $ = (selector) => document.querySelector(selector);
  const STATUS_ORDER = ['waiting', 'scheduled', 'running', 'done', 'error', 'reschedule', 'cancel', 'canceled', 'paused'];
  /** Rows kept in the activity table. */
  const ACTIVITY_LIMIT = 50;
  /** Instances' heartbeats are written every 10 s: re-read the overview as often. */
  const OVERVIEW_EVERY_MS = 5000;

  let currentTaskId = null;
  /** The tasks the open task waits for (`after`): a change to one of them refreshes its table. */
  let currentDependencies = new Set();
  let currentDoc = null;
  let overviewTimer = null;
  // The server writes a new token into index.html at every start; actions send it back in a
  // header, which only this page can read and only a same-origin request can carry.
  const actionToken = document.querySelector('meta[name="after-token"]').content;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const text = (value) => (value === null || value === undefined || value === '' ? '–' : String(value));
  // A task without a status is waiting (a user may leave the field out).
  const statusBadge = (status) => el('span', { class: `status ${status || 'waiting'}`, text: status || 'waiting' });
  const taskLink = (id) => el('a', { href: `#/task/${encodeURIComponent(id)}`, 'data-task-id': id, text: id });

  function ago(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
    return `${Math.floor(s / 3600)}h ago`;
  }

  function fillBody(table, rows, emptyText, columns) {
    const body = table.querySelector('tbody');
    body.replaceChildren();
    if (rows.length === 0) {
      body.append(el('tr', { class: 'empty' }, el('td', { colspan: String(columns), text: emptyText })));
      return;
    }
    for (const row of rows) body.append(row);
  }

  async function api(path, options) {
    const res = await fetch(path, options);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `HTTP ${res.status}`);
    return body;
  }

  // ---- overview -------------------------------------------------------------------------

  async function refreshOverview() {
    let overview;
    try {
      overview = await api('/api/overview');
    } catch (err) {
      $('#database').textContent = `cannot read the overview: ${err.message}`;
      return;
    }
    $('#database').textContent = overview.database;
    const live = overview.instances.filter((i) => i.live);
    fillBody(
      $('#instances'),
      live.map((i) =>
        el('tr', { 'data-instance': i.instance },
          el('td', { text: i.worker }), el('td', {}, el('code', { text: i.instance })), el('td', { text: i.host }),
          el('td', { class: 'num', text: String(i.pid) }), el('td', { title: i.heartbeat_at, text: ago(i.age_ms) }),
          el('td', { class: 'num', text: String(i.running) }), el('td', { class: 'num', text: String(i.held) }),
          el('td', { class: 'num', text: typeof i.throttled === 'number' ? String(i.throttled) : '–' }))),
      'no live worker instance (start one with `after start <name>`)', 8,
    );
    renderWorkers(overview);
    renderCounts(overview.counts);
    fillBody(
      $('#next-due'),
      overview.nextDue.map((t) => el('tr', { 'data-task-id': t.id },
        el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', {}, statusBadge(t.status)),
        el('td', { text: text(t.date) }), el('td', { text: t.after ? `${text(t.job)} · after ${t.after.join(', ')}` : text(t.job) }))),
      'nothing due', 5,
    );
    fillBody(
      $('#failures'),
      overview.failures.map((t) => el('tr', { 'data-task-id': t.id },
        el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', { text: text(t.date) }),
        el('td', { text: text(t.job) }), el('td', { class: 'error wrap', text: text(t.error) }))),
      'no failed task', 5,
    );
  }

  // Every worker name the page knows of: tasks name it, an instance serves it, or it is paused.
  function renderWorkers(overview) {
    const names = new Set([...overview.counts.map((c) => c.worker), ...overview.instances.filter((i) => i.live).map((i) => i.worker), ...overview.paused]);
    const rows = [...names].sort().map((worker) => {
      const paused = overview.paused.includes(worker);
      const live = overview.instances.filter((i) => i.live && i.worker === worker).length;
      const button = el('button', { type: 'button', 'data-worker-action': paused ? 'resume' : 'pause', text: paused ? 'Resume' : 'Pause' });
      button.addEventListener('click', () => actOnWorker(worker, paused ? 'resume' : 'pause'));
      return el('tr', { 'data-worker': worker, 'data-paused': paused ? 'true' : 'false' },
        el('td', { text: worker }), el('td', { class: 'num', text: String(live) }),
        el('td', {}, el('span', { class: `status ${paused ? 'paused' : 'running'}`, text: paused ? 'paused' : 'running' })),
        el('td', {}, button));
    });
    fillBody($('#workers'), rows, 'no workers yet', 4);
  }

  async function actOnWorker(worker, action) {
    const result = $('#worker-result');
    result.textContent = '…';
    try {
      const report = await api(`/api/workers/${encodeURIComponent(worker)}/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-after-token': actionToken },
        body: JSON.stringify({ action }),
      });
      const what = report.paused ? 'paused: no new run starts' : 'resumed';
      result.textContent = report.changed ? `worker ${worker} ${what}` : `worker ${worker} was already ${report.paused ? 'paused' : 'running'}`;
    } catch (err) {
      result.textContent = `${action} refused: ${err.message}`;
    }
    refreshOverview();
  }

  function renderCounts(counts) {
    const statuses = STATUS_ORDER.filter((s) => counts.some((c) => c.status === s));
    for (const c of counts) if (!statuses.includes(c.status)) statuses.push(c.status);
    const workers = [...new Set(counts.map((c) => c.worker))].sort();
    const table = $('#counts');
    table.querySelector('thead').replaceChildren(
      el('tr', {}, el('th', { text: 'Worker' }), ...statuses.map((s) => el('th', { class: 'num', text: s })), el('th', { class: 'num', text: 'total' })),
    );
    fillBody(
      table,
      workers.map((worker) => {
        const cells = statuses.map((s) => counts.filter((c) => c.worker === worker && c.status === s).reduce((n, c) => n + c.count, 0));
        return el('tr', { 'data-worker': worker }, el('td', { text: worker }),
          ...cells.map((n, i) => el('td', { class: 'num', 'data-status': statuses[i], text: String(n) })),
          el('td', { class: 'num', text: String(cells.reduce((a, b) => a + b, 0)) }));
      }),
      'no tasks', statuses.length + 2,
    );
  }

  let overviewPending = null;
  /** Many changes in a burst cause one overview read. */
  function scheduleOverview() {
    if (overviewPending) return;
    overviewPending = setTimeout(() => {
      overviewPending = null;
      refreshOverview();
    }, 300);
  }

  // ---- activity (from the server's _changes feed) ----------------------------------------

  function showActivity(task) {
    const body = $('#activity tbody');
    body.querySelector('tr.empty')?.remove();
    const existing = [...body.children].find((row) => row.dataset.taskId === task.id);
    const row = el('tr', { class: 'fresh', 'data-task-id': task.id, 'data-status': task.deleted ? 'deleted' : task.status || 'waiting' },
      el('td', {}, taskLink(task.id)), el('td', { text: text(task.worker) }),
      el('td', {}, statusBadge(task.deleted ? 'deleted' : task.status)), el('td', { text: text(task.date) }),
      el('td', { text: text(task.job) }), el('td', { class: 'error wrap', text: task.error || '' }));
    if (existing) existing.remove();
    body.prepend(row);
    while (body.children.length > ACTIVITY_LIMIT) body.lastElementChild.remove();
  }

  function connectEvents() {
    const events = new EventSource('/api/events');
    const badge = $('#live');
    events.addEventListener('hello', () => {
      badge.className = 'live on';
      badge.textContent = 'live';
      scheduleOverview();
      if (currentTaskId) loadTask(currentTaskId);
    });
    events.addEventListener('task', (event) => {
      const task = JSON.parse(event.data);
      showActivity(task);
      scheduleOverview();
      if (task.id === currentTaskId) loadTask(currentTaskId);
      else if (currentTaskId && currentDoc && currentDependencies.has(task.id)) loadDependencies(currentTaskId, currentDoc);
    });
    events.addEventListener('resync', () => scheduleOverview());
    events.onerror = () => {
      badge.className = 'live off';
      badge.textContent = 'reconnecting…';
    };
  }

  // ---- task page ------------------------------------------------------------------------

  async function loadTask(id) {
    let doc;
    try {
      doc = await api(`/api/tasks/${encodeURIComponent(id)}`);
    } catch (err) {
      setTaskStatus('missing');
      $('#task-doc').textContent = err.message;
      return;
    }
    if (id !== currentTaskId) return;
    $('#task-id').textContent = doc._id;
    setTaskStatus(doc.status);
    const error = $('#task-error');
    error.hidden = !(doc.error && doc.error.message);
    error.textContent = doc.error && doc.error.message ? `error: ${doc.error.message}${doc.error.code ? ` (${doc.error.code})` : ''}` : '';
    const status = doc.status || 'waiting';
    const finished = ['done', 'error', 'canceled'].includes(status);
    $('#action-cancel').disabled = finished || status === 'cancel';
    $('#action-run-now').disabled = ['running', 'cancel', 'canceled', 'paused'].includes(status);
    $('#action-pause').disabled = finished || status === 'cancel' || status === 'paused';
    $('#action-resume').disabled = status !== 'paused';
    $('#action-retry').disabled = status !== 'error';
    $('#action-reschedule').disabled = status === 'running' || status === 'cancel';
    loadDependencies(id, doc);
    const lastRun = doc.last_run || {};
    fillBody(
      $('#last-run'),
      Object.keys(lastRun).map((key) => el('tr', {}, el('th', { text: key }), el('td', { text: text(lastRun[key]) }))),
      'never ran', 2,
    );
    fillBody(
      $('#history'),
      (Array.isArray(doc.history) ? doc.history : []).map((h) => el('tr', {},
        el('td', {}, statusBadge(h.status)), el('td', { text: text(h.started_at) }), el('td', { text: text(h.finished_at) }),
        el('td', { class: 'num', text: h.duration_ms === undefined ? '–' : `${h.duration_ms} ms` }),
        el('td', {}, el('code', { text: text(h.instance) })), el('td', { class: 'error wrap', text: h.error ? h.error.message : '' }))),
      'no runs yet', 6,
    );
    $('#task-doc').textContent = JSON.stringify(doc, null, 2);
  }

  /** The tasks this one waits for (`after`), each with its status now. */
  async function loadDependencies(id, doc) {
    const section = $('#after-section');
    const named = Array.isArray(doc.after) && doc.after.length > 0;
    currentDoc = doc;
    currentDependencies = new Set(named ? doc.after : []);
    section.hidden = !named;
    if (!named) return;
    let deps;
    try {
      deps = await api(`/api/tasks/${encodeURIComponent(id)}/after`);
    } catch (err) {
      fillBody($('#after'), [], `cannot read them: ${err.message}`, 2);
      return;
    }
    if (id !== currentTaskId) return;
    fillBody(
      $('#after'),
      deps.map((d) => el('tr', { 'data-task-id': d.id },
        el('td', {}, d.status === null ? el('code', { text: d.id }) : taskLink(d.id)),
        el('td', {}, d.status === null ? statusBadge('missing') : statusBadge(d.status), d.repeats ? ' (repeats)' : ''))),
      'none', 2,
    );
  }

  function setTaskStatus(status) {
    const badge = statusBadge(status);
    badge.id = 'task-status';
    $('#task-status').replaceWith(badge);
  }

  async function act(action) {
    const result = $('#action-result');
    const body = { action };
    if (action === 'reschedule') {
      const value = $('#reschedule-date').value;
      if (!value) {
        result.textContent = 'choose a date first';
        return;
      }
      body.date = `${value.length === 16 ? `${value}:00` : value}Z`;
    }
    result.textContent = '…';
    try {
      const updated = await api(`/api/tasks/${encodeURIComponent(currentTaskId)}/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-after-token': actionToken },
        body: JSON.stringify(body),
      });
      result.textContent = `${action}: task is now ${updated.status}`;
      loadTask(currentTaskId);
    } catch (err) {
      result.textContent = `${action} refused: ${err.message}`;
    }
  }

  for (const action of ['cancel', 'run-now', 'retry', 'reschedule', 'pause', 'resume']) {
    $(`#action-${action}`).addEventListener('click', () => act(action));
  }

  // ---- routing --------------------------------------------------------------------------

  function route() {
    const match = /^#\/task\/(.+)$/.exec(location.hash);
    currentTaskId = match ? decodeURIComponent(match[1]) : null;
    $('#overview').hidden = currentTaskId !== null;
    $('#task').hidden = currentTaskId === null;
    $('#action-result').textContent = '';
    if (currentTaskId) loadTask(currentTaskId);
    else refreshOverview();
  }

  window.addEventListener('hashchange', route);
  route();
  connectEvents();
  overviewTimer = setInterval(() => {
    if (currentTaskId === null) refreshOverview();
  }, OVERVIEW_EVERY_MS);
  window.addEventListener('beforeunload', () => clearInterval(overviewTimer));
})();

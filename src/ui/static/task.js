// A task's story: its runs as a timeline, its next dates, what it waits for and what waits for
// it, why it has not run yet, its document, and the single actions.
import { act, api } from './api.js';
import { $, duration, el, fillBody, statusBadge, taskLink, text } from './dom.js';

export let currentTaskId = null;
let watched = new Set();

export function watches(id) {
  return id === currentTaskId || watched.has(id);
}

export async function showTask(id) {
  currentTaskId = id;
  $('#action-result').textContent = '';
  await loadTask();
}

export async function loadTask() {
  const id = currentTaskId;
  let story;
  try {
    story = await api(`/api/tasks/${encodeURIComponent(id)}/story`);
  } catch (err) {
    setStatus('missing');
    $('#task-doc').textContent = err.message;
    return;
  }
  if (id !== currentTaskId) return;
  const doc = story.task;
  $('#task-id').textContent = doc._id;
  setStatus(doc.status);
  $('#task-why').textContent = story.why.text;
  $('#task-why').dataset.why = story.why.kind;
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
  renderTimeline(story.runs);
  $('#next-summary').textContent = story.next ? `${story.next.summary}${story.next.end ? ` · ${story.next.end}` : ''}` : '';
  fillBody($('#next-dates'), (story.next?.rows || []).map((r) => el('tr', {}, el('td', { text: r.utc }), el('td', { text: `${r.local}${r.overdue ? ' (overdue: runs at once)' : ''}` }))), 'no date left', 2);
  $('#after-section').hidden = story.waitsFor.length === 0;
  fillBody($('#after'), story.waitsFor.map((d) => el('tr', { 'data-task-id': d.id },
    el('td', {}, d.status === null ? el('code', { text: d.id }) : taskLink(d.id)),
    el('td', {}, statusBadge(d.status === null ? 'missing' : d.status), d.repeats ? ' (repeats)' : ''))), 'none', 2);
  fillBody($('#waited-by'), story.waitedBy.map((t) => el('tr', { 'data-task-id': t.id }, el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', {}, statusBadge(t.status)))), 'no task waits for this one', 3);
  watched = new Set([...story.waitsFor.map((d) => d.id), ...story.waitedBy.map((t) => t.id)]);
  const lastRun = doc.last_run || {};
  fillBody($('#last-run'), Object.keys(lastRun).map((key) => el('tr', {}, el('th', { text: key }), el('td', { text: text(lastRun[key]) }))), 'never ran', 2);
  fillBody($('#history'), (Array.isArray(doc.history) ? doc.history : []).map((h) => el('tr', {},
    el('td', {}, statusBadge(h.status)), el('td', { text: text(h.started_at) }), el('td', { text: text(h.finished_at) }),
    el('td', { class: 'num', text: h.duration_ms === undefined ? '–' : `${h.duration_ms} ms` }),
    el('td', {}, el('code', { text: text(h.instance) })), el('td', { class: 'error', text: h.error ? h.error.message : '' }))), 'no runs yet', 6);
  $('#task-doc').textContent = JSON.stringify(doc, null, 2);
}

/** Runs oldest first, each a dot, its times, a bar as long as its duration (relative to the longest). */
function renderTimeline(runs) {
  const longest = Math.max(1, ...runs.map((r) => r.duration_ms || 0));
  const items = runs.map((r) => el('div', { class: `run ${r.status === 'error' ? 'error' : 'done'}`, 'data-run-status': r.status },
    el('div', {}, statusBadge(r.status), ` ${text(r.started_at)} → ${text(r.finished_at)} · ${duration(r.duration_ms)} · `, el('code', { text: text(r.instance) })),
    r.error ? el('div', { class: 'error', text: r.error.message }) : null,
    el('div', { class: 'bar', 'data-width': String(Math.round(((r.duration_ms || 0) / longest) * 100)) })));
  $('#timeline').replaceChildren(...(items.length ? items : [el('p', { class: 'muted', text: 'no run yet' })]));
  // Widths through the CSSOM (allowed by the page's CSP), never a style attribute.
  for (const bar of document.querySelectorAll('#timeline .bar')) bar.style.width = `${Math.max(1, Number(bar.dataset.width))}%`;
}

function setStatus(status) {
  const badge = statusBadge(status);
  badge.id = 'task-status';
  $('#task-status').replaceWith(badge);
}

async function actOnTask(action) {
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
    const updated = await act(`/api/tasks/${encodeURIComponent(currentTaskId)}/actions`, body);
    result.textContent = `${action}: task is now ${updated.status}`;
    loadTask();
  } catch (err) {
    result.textContent = `${action} refused: ${err.message}`;
  }
}

export function setUpTask() {
  for (const action of ['cancel', 'run-now', 'retry', 'reschedule', 'pause', 'resume']) $(`#action-${action}`).addEventListener('click', () => actOnTask(action));
}

export function leaveTask() {
  currentTaskId = null;
  watched = new Set();
}

// Every repeating task in one list: its rule in words, next run, last outcome, Run now and Pause.
import { act, api, query } from './api.js';
import { $, el, fillBody, statusBadge, taskLink, text } from './dom.js';

export async function showSchedules(after) {
  let page;
  try {
    page = await api(`/api/schedules?${query({ worker: $('#schedule-worker').value.trim(), after })}`);
  } catch (err) {
    fillBody($('#schedule-list'), [], `cannot read the schedules: ${err.message}`, 7);
    return;
  }
  fillBody($('#schedule-list'), page.rows.map((s) => {
    const run = el('button', { type: 'button', 'data-schedule-action': 'run-now', text: 'Run now', disabled: ['running', 'paused', 'cancel', 'canceled'].includes(s.status) });
    const pause = el('button', { type: 'button', 'data-schedule-action': s.status === 'paused' ? 'resume' : 'pause', text: s.status === 'paused' ? 'Resume' : 'Pause', disabled: ['done', 'error', 'canceled', 'cancel'].includes(s.status) });
    run.addEventListener('click', () => actOn(s.id, 'run-now'));
    pause.addEventListener('click', () => actOn(s.id, pause.dataset.scheduleAction));
    return el('tr', { 'data-task-id': s.id, tabindex: '-1' }, el('td', {}, taskLink(s.id)), el('td', { text: text(s.worker) }), el('td', { text: text(s.job) }),
      el('td', { 'data-rule': '', text: s.rule }), el('td', {}, text(s.date), ' ', statusBadge(s.status)),
      el('td', {}, s.last ? statusBadge(s.last.status) : el('span', { class: 'muted', text: 'never ran' }), s.last ? ` ${s.last.finished_at}` : '', s.last?.error ? el('div', { class: 'error', text: s.last.error }) : null),
      el('td', {}, run, ' ', pause));
  }), 'no repeating task', 7);
  const more = $('#schedule-more');
  more.hidden = !page.next;
  more.onclick = () => showSchedules(`${page.next.date}|${page.next.id}`);
}

async function actOn(id, action) {
  const result = $('#schedule-result');
  try {
    const updated = await act(`/api/tasks/${encodeURIComponent(id)}/actions`, { action });
    result.textContent = `${id}: ${action} → ${updated.status}`;
  } catch (err) {
    result.textContent = `${action} refused: ${err.message}`;
  }
  showSchedules();
}

export function setUpSchedules() {
  $('#schedule-apply').addEventListener('click', () => showSchedules());
}

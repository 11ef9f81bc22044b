// Every task findable: lists by status with keyset paging, page size, order, filters by worker,
// job and date; bulk actions on the selected tasks or on every task the list matches; search.
import { act, api, query } from './api.js';
import { $, el, fillBody, number, statusBadge, taskLink, text } from './dom.js';

export const LISTS = ['waiting', 'scheduled', 'running', 'paused', 'error', 'done', 'canceled'];
const LIST_STATUSES = { waiting: ['waiting', 'reschedule'], canceled: ['cancel', 'canceled'] };
let current = null;
const selected = new Set();

/** The list the hash names: `#/tasks?status=error&worker=mailer&after=<date>|<id>`. */
export function listParams(hash) {
  const params = new URLSearchParams(hash.split('?')[1] || '');
  return {
    status: LISTS.includes(params.get('status')) ? params.get('status') : 'waiting',
    worker: params.get('worker') || '', job: params.get('job') || '', before: params.get('before') || '',
    order: params.get('order') === 'desc' ? 'desc' : 'asc', limit: params.get('limit') || '50', after: params.get('after') || '',
  };
}

export async function showList(params) {
  const changedList = !current || ['status', 'worker', 'job', 'before'].some((k) => current[k] !== params[k]);
  if (changedList) selected.clear();
  current = params;
  renderTabs(params, null);
  api('/api/counts').then((answer) => params === current && renderTabs(params, answer.counts)).catch(() => {});
  $('#filter-worker').value = params.worker;
  $('#filter-job').value = params.job;
  $('#filter-before').value = params.before ? params.before.slice(0, 19) : '';
  $('#filter-order').value = params.order;
  const sizes = $('#filter-limit');
  if (![...sizes.options].some((o) => o.value === params.limit)) sizes.append(el('option', { value: params.limit, text: params.limit }));
  sizes.value = params.limit;
  await reloadList();
}

export async function reloadList() {
  if (!current) return;
  const params = current;
  api('/api/counts').then((answer) => params === current && renderTabs(params, answer.counts)).catch(() => {});
  let page;
  try {
    page = await api(`/api/tasks?${query(params)}`);
  } catch (err) {
    fillBody($('#task-list'), [], `cannot read the list: ${err.message}`, 7);
    return;
  }
  if (params !== current) return;
  fillBody($('#task-list'), page.rows.map(row), `no ${params.status} task${params.worker ? ` of ${params.worker}` : ''}${params.job ? ` running ${params.job}` : ''}`, 7);
  performance.mark('after:list');
  $('#next-page').disabled = !page.next;
  $('#next-page').dataset.after = page.next ? `${page.next.date}|${page.next.id}` : '';
  $('#first-page').disabled = !params.after;
  $('#page-note').textContent = `${page.rows.length} task(s) on this page${page.next ? '; more after' : ''}`;
  updateSelection();
}

function row(t) {
  const box = el('input', { type: 'checkbox', 'aria-label': `select ${t.id}`, 'data-select': t.id, checked: selected.has(t.id) });
  box.addEventListener('change', () => {
    if (box.checked) selected.add(t.id);
    else selected.delete(t.id);
    updateSelection();
  });
  const why = t.why ? el('span', { class: 'why', 'data-why': t.why.kind, text: t.why.text }) : t.error ? el('span', { class: 'error', text: t.error }) : el('span', { class: 'muted', text: t.finished_at ? `finished ${t.finished_at}` : '' });
  return el('tr', { 'data-task-id': t.id, tabindex: '-1' }, el('td', {}, box), el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }),
    el('td', {}, statusBadge(t.status)), el('td', { text: text(t.date) }), el('td', { text: text(t.job) }), el('td', {}, why));
}

function renderTabs(params, counts) {
  const total = (list) => (counts || []).filter((c) => (LIST_STATUSES[list] || [list]).includes(c.status) && (!params.worker || c.worker === params.worker)).reduce((n, c) => n + c.count, 0);
  $('#status-tabs').replaceChildren(...LISTS.map((list) => el('a', {
    href: `#/tasks?${query({ ...params, status: list, after: '' })}`, 'aria-current': list === params.status ? 'page' : undefined, 'data-list': list,
  }, list === 'error' ? 'failed' : list, counts ? el('span', { class: 'count', text: number(total(list)) }) : null)));
}

function updateSelection() {
  $('#selected-count').textContent = `${selected.size} selected`;
  const boxes = [...document.querySelectorAll('#task-list [data-select]')];
  $('#select-all').checked = boxes.length > 0 && boxes.every((b) => b.checked);
}

export function setUpList(navigate) {
  $('#list-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    const before = $('#filter-before').value;
    navigate(`#/tasks?${query({ status: current?.status || 'waiting', worker: $('#filter-worker').value.trim(), job: $('#filter-job').value.trim(),
      before: before ? `${before.length === 16 ? `${before}:00` : before}Z` : '', order: $('#filter-order').value, limit: $('#filter-limit').value })}`);
  });
  $('#next-page').addEventListener('click', () => nextPage(navigate));
  $('#first-page').addEventListener('click', () => navigate(`#/tasks?${query({ ...current, after: '' })}`));
  $('#select-all').addEventListener('change', () => {
    for (const box of document.querySelectorAll('#task-list [data-select]')) {
      box.checked = $('#select-all').checked;
      if (box.checked) selected.add(box.dataset.select);
      else selected.delete(box.dataset.select);
    }
    updateSelection();
  });
  for (const button of document.querySelectorAll('[data-bulk]')) button.addEventListener('click', () => bulk(button.dataset.bulk));
}

export function nextPage(navigate) {
  const after = $('#next-page').dataset.after;
  if (after) navigate(`#/tasks?${query({ ...current, after })}`);
}

async function bulk(action) {
  const result = $('#bulk-result');
  delete result.dataset.done;
  const all = $('#bulk-scope').value === 'all';
  if (!all && selected.size === 0) {
    result.textContent = 'select tasks first, or act on every task this list matches';
    return;
  }
  if (action === 'delete' && !current.before) {
    result.textContent = 'choose "Dated before" first: finished tasks dated before it are deleted';
    return;
  }
  const filter = { status: current.status, ...(current.worker ? { worker: current.worker } : {}), ...(current.job ? { job: current.job } : {}), ...(current.before ? { before: current.before } : {}) };
  result.textContent = '…';
  let progress;
  try {
    progress = await act('/api/bulk', all ? { action, filter } : { action, ids: [...selected] });
    while (!progress.finished) {
      result.textContent = `${action}: ${number(progress.done)} done so far…`;
      await new Promise((resolve) => setTimeout(resolve, 400));
      progress = await api(`/api/bulk/${progress.id}`);
    }
  } catch (err) {
    result.textContent = `${action} refused: ${err.message}`;
    return;
  }
  const skipped = Object.entries(progress.skipped).map(([why, n]) => `${n} ${why}`).join('; ');
  result.textContent = `${action}: ${number(progress.done)} done, ${number(Object.values(progress.skipped).reduce((a, b) => a + b, 0))} skipped${skipped ? ` (${skipped})` : ''}${progress.error ? `; stopped: ${progress.error}` : ''}`;
  result.dataset.done = String(progress.done);
  selected.clear();
  reloadList();
}

export async function showSearch(q, after) {
  $('#search-term').textContent = q;
  let found;
  try {
    found = await api(`/api/search?${query({ q, after })}`);
  } catch (err) {
    fillBody($('#search-tasks'), [], err.message, 5);
    return;
  }
  $('#search-jobs').replaceChildren(...(found.jobs.length ? found.jobs.map((j) => el('li', {}, el('a', { href: `#/tasks?${query({ status: 'waiting', job: j.job })}`, text: j.job }), ` (${number(j.count)} tasks)`)) : [el('li', { class: 'muted', text: 'no job name starts so' })]));
  fillBody($('#search-tasks'), found.tasks.map((t) => el('tr', { 'data-task-id': t.id, tabindex: '-1' }, el('td', {}, taskLink(t.id)), el('td', { text: text(t.worker) }), el('td', {}, statusBadge(t.status)), el('td', { text: text(t.date) }), el('td', { text: text(t.job) }))), 'no task id starts so', 5);
  performance.mark('after:search');
  const more = $('#search-more');
  more.hidden = !found.next;
  more.onclick = () => showSearch(q, found.next);
}

export function jobNames(jobs) {
  $('#job-names').replaceChildren(...jobs.map((j) => el('option', { value: j.job })));
}

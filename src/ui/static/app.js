// The After dashboard page: plain JavaScript modules, no build step. This module routes
// between the pages, signs in, follows the live stream and keeps the open page up to date
// without flooding it: a burst of changes redraws a page at most every two seconds.
import { act, api, whenSignedOut } from './api.js';
import { resetCharts } from './charts.js';
import { $, throttle } from './dom.js';
import { renderInstances } from './instances.js';
import { setUpKeys } from './keys.js';
import { refreshCharts, refreshOverview, showActivity } from './overview.js';
import { showSchedules, setUpSchedules } from './schedules.js';
import { leaveTask, loadTask, setUpTask, showTask, watches } from './task.js';
import { jobNames, listParams, nextPage, reloadList, setUpList, showList, showSearch } from './tasks.js';

const PAGES = ['signin', 'overview', 'tasks', 'search-results', 'task', 'schedules', 'instances'];
/** The realtime chart and the instances are re-read this often while shown. */
const REFRESH_MS = 5000;
let page = null;
let events = null;

function show(name) {
  page = name;
  for (const id of PAGES) $(`#${id}`).hidden = id !== name;
  for (const link of document.querySelectorAll('[data-nav]')) link.setAttribute('aria-current', link.dataset.nav === name || (name === 'task' && link.dataset.nav === 'tasks') ? 'page' : 'false');
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const hash = location.hash || '#/';
  if (page === 'signin') return;
  if (!hash.startsWith('#/task/')) leaveTask();
  if (hash.startsWith('#/task/')) {
    show('task');
    await showTask(decodeURIComponent(hash.slice('#/task/'.length)));
  } else if (hash.startsWith('#/tasks')) {
    show('tasks');
    await showList(listParams(hash));
  } else if (hash.startsWith('#/search')) {
    show('search-results');
    await showSearch(new URLSearchParams(hash.split('?')[1] || '').get('q') || '');
  } else if (hash.startsWith('#/schedules')) {
    show('schedules');
    await showSchedules();
  } else if (hash.startsWith('#/instances')) {
    show('instances');
    await refreshInstances();
  } else {
    show('overview');
    await Promise.all([refreshCounts(), refreshCharts()]);
  }
}

let catchUp = null;
async function refreshCounts() {
  const overview = await refreshOverview();
  // Counts from an index still catching up (after a burst): read them again until it has.
  if (overview && overview.countsLag > 0 && !catchUp) {
    catchUp = setTimeout(() => {
      catchUp = null;
      if (page === 'overview') refreshCounts();
    }, 2000);
  }
  return overview;
}

async function refreshInstances() {
  const overview = await refreshOverview();
  if (overview) renderInstances(overview);
}

// Live changes: the page that is shown is read again, at most every two seconds.
const refreshShown = throttle(() => {
  if (page === 'overview') refreshCounts();
  else if (page === 'tasks') reloadList();
  else if (page === 'instances') refreshInstances();
}, 2000);
const refreshTask = throttle(() => loadTask(), 1000);

function connectEvents() {
  events?.close();
  events = new EventSource('/api/events');
  const badge = $('#live');
  events.addEventListener('hello', () => {
    badge.className = 'live on';
    badge.textContent = 'live';
    refreshShown();
  });
  events.addEventListener('tasks', (event) => {
    const batch = JSON.parse(event.data);
    if (page === 'overview') showActivity(batch);
    refreshShown();
    if (page === 'task' && batch.tasks.some((t) => watches(t.id))) refreshTask();
  });
  events.addEventListener('resync', () => refreshShown());
  events.onerror = () => {
    badge.className = 'live off';
    badge.textContent = 'reconnecting…';
  };
}

// ---- sign-in ---------------------------------------------------------------------------

async function start() {
  let session;
  try {
    session = await api('/api/session');
  } catch (err) {
    $('#database').textContent = `the dashboard does not answer: ${err.message}`;
    return;
  }
  if (session.required && !session.user) return askSignIn();
  signedIn(session);
}

function askSignIn() {
  events?.close();
  show('signin');
  $('#user').textContent = '';
  $('#sign-out').hidden = true;
  $('#signin-name').focus();
}

function signedIn(session) {
  const user = session.user;
  $('#user').textContent = user && user.name ? `${user.name}${user.canAct ? '' : ' (reads only)'}` : '';
  $('#sign-out').hidden = !session.required;
  document.body.dataset.canAct = user && user.canAct ? 'true' : 'false';
  page = null;
  connectEvents();
  // The job names (the filters' suggestions) after the first page is drawn.
  route().finally(() => api('/api/jobs').then(jobNames).catch(() => {}));
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('#signin-result');
  result.textContent = '';
  try {
    const session = await act('/api/session', { name: $('#signin-name').value, password: $('#signin-password').value });
    $('#signin-password').value = '';
    signedIn(session);
  } catch (err) {
    result.textContent = err.message;
  }
});

$('#sign-out').addEventListener('click', async () => {
  await act('/api/session', {}, 'DELETE').catch(() => {});
  askSignIn();
});
whenSignedOut(askSignIn);

// ---- theme, search, help ---------------------------------------------------------------

function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('after-theme', document.documentElement.dataset.theme);
  resetCharts();
  if (page === 'overview') refreshCharts();
}
const savedTheme = localStorage.getItem('after-theme');
if (savedTheme === 'dark' || savedTheme === 'light') document.documentElement.dataset.theme = savedTheme;
$('#theme').addEventListener('click', toggleTheme);
$('#help-button').addEventListener('click', () => $('#help').showModal());
$('#search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = $('#search').value.trim();
  if (q) navigate(`#/search?q=${encodeURIComponent(q)}`);
});
$('#chart-range').addEventListener('change', refreshCharts);
$('#chart-worker').addEventListener('change', refreshCharts);

setUpList(navigate);
setUpTask();
setUpSchedules();
setUpKeys({ navigate, toggleTheme, nextPage: () => page === 'tasks' && nextPage(navigate), firstPage: () => page === 'tasks' && $('#first-page').click() });
window.addEventListener('hashchange', route);
setInterval(() => {
  if (page === 'overview' && $('#chart-range').value === 'realtime') refreshCharts();
  if (page === 'instances') refreshInstances();
}, REFRESH_MS);
start();

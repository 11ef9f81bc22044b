// Keyboard use: every control is a link, a button or a field (Tab reaches all of them); these
// shortcuts add the quick moves of a list. None fires while typing in a field.
import { $ } from './dom.js';

export function setUpKeys({ navigate, toggleTheme, nextPage, firstPage }) {
  let pending = '';
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) {
      if (event.key === 'Escape') target.blur();
      return;
    }
    const key = event.key;
    if (pending === 'g') {
      pending = '';
      const to = { o: '#/', t: '#/tasks', s: '#/schedules', i: '#/instances' }[key];
      if (to) navigate(to);
      return;
    }
    if (key === 'g') pending = 'g';
    else if (key === '/') {
      event.preventDefault();
      $('#search').focus();
    } else if (key === '?') $('#help').showModal();
    else if (key === 't') toggleTheme();
    else if (key === 'n') nextPage();
    else if (key === 'p') firstPage();
    else if (key === 'j' || key === 'k') move(key === 'j' ? 1 : -1);
    else if (key === 'x') toggleCurrent();
    else if (key === 'Enter' && currentRow()) currentRow().querySelector('a[data-task-id]')?.click();
  });
}

function rows() {
  return [...document.querySelectorAll('main:not([hidden]) tbody tr[data-task-id]')];
}

function currentRow() {
  return document.querySelector('main:not([hidden]) tbody tr.current');
}

function move(step) {
  const all = rows();
  if (all.length === 0) return;
  const at = all.indexOf(currentRow());
  const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
  currentRow()?.classList.remove('current');
  next.classList.add('current');
  next.focus();
}

function toggleCurrent() {
  currentRow()?.querySelector('input[type="checkbox"]')?.click();
}

// DOM helpers. Task documents are untrusted (anyone who can write to the database writes them),
// so every value reaches the page through textContent or an attribute, never as HTML.
export const $ = (selector) => document.querySelector(selector);

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const text = (value) => (value === null || value === undefined || value === '' ? '–' : String(value));
// A task without a status is waiting (a user may leave the field out).
export const statusBadge = (status) => el('span', { class: `status ${status || 'waiting'}`, text: status || 'waiting' });
export const taskLink = (id) => el('a', { href: `#/task/${encodeURIComponent(id)}`, 'data-task-id': id, text: id });

export function fillBody(table, rows, emptyText, columns) {
  const body = table.querySelector('tbody');
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(el('tr', { class: 'empty' }, el('td', { colspan: String(columns), text: emptyText })));
    return;
  }
  body.append(...rows);
}

export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
}

export function duration(ms) {
  if (ms === undefined || ms === null) return '–';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export const number = (n) => Number(n).toLocaleString('en');

/** At most one call of `fn` every `ms`; calls meanwhile are folded into one at the end. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

// Every live instance: what it runs now and since when, held and throttled tasks, its share
// of its worker name's tasks and its runs of the last 10 minutes.
import { $, ago, el, fillBody, taskLink, text } from './dom.js';

export function renderInstances(overview) {
  fillBody($('#instance-list'), overview.instances.map((i) => {
    const runs = (i.running_now || []).map((r) => el('div', {}, taskLink(r.id), ` ${r.job} since ${ago(Date.now() - Date.parse(r.since)).replace(' ago', '')}`));
    const recent = i.recent ? `${i.recent.done} done, ${i.recent.failed} failed, ${i.recent.retried} retried` : '–';
    return el('tr', { 'data-instance': i.instance },
      el('td', { text: i.worker }), el('td', {}, el('code', { text: i.instance })), el('td', { text: i.host }), el('td', { class: 'num', text: String(i.pid) }),
      el('td', { title: i.heartbeat_at, text: ago(i.age_ms) }), el('td', {}, ...(runs.length ? runs : [el('span', { class: 'muted', text: `${i.running} running` })])),
      el('td', { class: 'num', text: String(i.held) }), el('td', { class: 'num', text: typeof i.throttled === 'number' ? String(i.throttled) : '–' }),
      el('td', { class: 'num', text: `${Math.round(i.share * 100)}%` }), el('td', { class: 'num', text: recent }));
  }), 'no live worker instance (start one with after start <name>)', 10);
}

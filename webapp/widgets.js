// Small pieces shared by the queue, the detail and the sheet.
import { h } from './dom.js';
import { priorityName } from './format.js';

export function priorityBadge(p) {
  const name = priorityName(p);
  return h('span', { class: `badge badge-${name.toLowerCase()}`, text: name });
}

export function statusBadge(status) {
  const st = status || 'new';
  return h('span', { class: `status status-${st}`, text: st });
}

export function alertHref(id) {
  return `#/alerts/${encodeURIComponent(id)}`;
}

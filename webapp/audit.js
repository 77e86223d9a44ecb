// Audit trail (#/audit; supervisor and admin): who opened and changed what,
// newest first, with "older" paging on the entry sequence number.

import { api } from './api.js';
import { clear, h } from './dom.js';
import { fmtUtc, num } from './format.js';
import { isSupervisor } from './session.js';
import { alertHref } from './widgets.js';

const LIMIT = 100;

export function mount(root) {
  document.title = 'Audit trail — boxwatch';
  if (!isSupervisor()) {
    root.append(h('section', { id: 'audit', class: 'panel' }, h('h1', { text: 'Audit trail' }),
      h('p', { class: 'view-error', text: 'The audit trail is for supervisors and administrators.' })));
    return null;
  }
  let alive = true;
  let oldest = null;         // seq of the last entry shown
  let seq = 0;

  const alertIn = h('input', { id: 'audit-alert-id', type: 'text', size: 18, placeholder: 'alert id' });
  const containerIn = h('input', { id: 'audit-container', type: 'text', size: 13, placeholder: 'container' });
  const userIn = h('input', { id: 'audit-user', type: 'text', size: 12, placeholder: 'user' });
  const tbody = h('tbody', { id: 'audit-body' });
  const older = h('button', { id: 'audit-older', type: 'button', class: 'btn', text: 'Older ›' });
  const errorEl = h('p', { id: 'audit-error', class: 'form-error' });
  const form = h('form', { id: 'audit-filters', class: 'filters' },
    h('label', { class: 'field' }, h('span', { text: 'Alert' }), alertIn),
    h('label', { class: 'field' }, h('span', { text: 'Container' }), containerIn),
    h('label', { class: 'field' }, h('span', { text: 'User' }), userIn),
    h('button', { id: 'audit-apply', type: 'submit', class: 'btn btn-primary', text: 'Show' }));

  root.append(h('section', { id: 'audit', class: 'audit' },
    h('div', { class: 'view-head' }, h('h1', { text: 'Audit trail' })),
    form, errorEl,
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table', class: 'data audit-table' },
      h('thead', {}, h('tr', {}, ['#', 'Time (UTC)', 'User', 'Action', 'Alert', 'Container', 'Detail'].map((t) => h('th', { text: t })))),
      tbody)),
    h('div', { class: 'pager' }, older)));

  function row(e) {
    return h('tr', { class: `audit-row audit-${e.action || ''}`, dataset: { seq: String(num(e.seq)) } },
      h('td', { class: 'num', text: String(num(e.seq)) }),
      h('td', { class: 'nowrap', text: fmtUtc(e.time_ms, { seconds: true }) }),
      h('td', { text: e.user || '' }),
      h('td', {}, h('span', { class: `action action-${e.action || ''}`, text: e.action || '' })),
      h('td', {}, e.alert_id ? h('a', { href: alertHref(e.alert_id), text: e.alert_id }) : ''),
      h('td', { class: 'mono', text: e.container_number || '' }),
      h('td', { class: 'detail-text', text: e.detail || '' }));
  }

  async function load(append) {
    const mySeq = ++seq;
    errorEl.textContent = '';
    older.disabled = true;
    try {
      const answer = await api('GET', '/api/audit', { query: {
        alert_id: alertIn.value.trim(), container: containerIn.value.trim().toUpperCase(), user: userIn.value.trim(),
        limit: LIMIT, before: append && oldest !== null ? oldest : '',
      } });
      if (!alive || mySeq !== seq) return;
      const entries = answer.entries || [];
      if (!append) clear(tbody);
      tbody.append(...entries.map(row));
      if (entries.length) oldest = num(entries[entries.length - 1].seq);
      if (!tbody.children.length) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colSpan: 7, text: 'No entry.' })));
      older.disabled = entries.length < LIMIT;
    } catch (e) {
      if (alive && e.status !== 401) errorEl.textContent = `could not load the audit trail: ${e.message}`;
    }
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); oldest = null; load(false); });
  older.addEventListener('click', () => load(true));
  load(false);
  return () => { alive = false; };
}

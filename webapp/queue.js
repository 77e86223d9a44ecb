// Live alert queue (#/queue): the hub's alert list with filters and paging,
// kept current by the live feed. New alerts that match the filters are
// inserted on the first page at their place in the hub's order (priority,
// then newest event first) and highlighted; on later pages a notice counts
// them instead, so rows do not shift under the officer's pointer.

import { api } from './api.js';
import { clear, h } from './dom.js';
import { fmtInt, fmtRoute, fmtScore, fmtUtc, isoUtc, num, PRIORITIES, priorityClass, priorityName, priorityRank } from './format.js';
import { subscribe } from './live.js';
import { userRegions } from './session.js';
import { alertHref, priorityBadge, statusBadge } from './widgets.js';

const LIMIT = 50;
const STATUSES = ['new', 'assigned', 'inspecting', 'closed'];
const FAMILIES = ['manifest', 'scan', 'gps', 'history', 'selection'];
const STORE_KEY = 'boxwatch.queue.filters';

function defaults() {
  return { priorities: [...PRIORITIES], statuses: [...STATUSES], region: '', port: '', family: '', q: '', offset: 0 };
}

// Filters survive going to an alert and back (and a reload of the tab).
function loadFilters() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
    if (saved && Array.isArray(saved.priorities) && Array.isArray(saved.statuses)) return { ...defaults(), ...saved };
  } catch { /* fall through */ }
  return defaults();
}
let filters = loadFilters();
function saveFilters() {
  try { sessionStorage.setItem(STORE_KEY, JSON.stringify(filters)); } catch { /* private mode */ }
}

// Query parameters per the API: a list that holds every value is no filter.
function queryFor(f) {
  return {
    priority: f.priorities.length < PRIORITIES.length ? f.priorities : '',
    status: f.statuses.length < STATUSES.length ? f.statuses : '',
    region: f.region, port: f.port.trim().toUpperCase(), family: f.family, q: f.q.trim(),
    limit: LIMIT, offset: f.offset,
  };
}

// The hub's filters applied to one Summary, for alerts arriving live, as the
// hub applies them: port is the port of discharge or the final destination;
// q is a case-insensitive part of the container number, bill of lading,
// shipper or consignee (the hub also searches the notify party, which a
// Summary does not carry).
function matches(sm, f) {
  if (!f.priorities.includes(priorityName(sm.priority))) return false;
  if (!f.statuses.includes((sm.workflow && sm.workflow.status) || 'new')) return false;
  if (f.region && !(sm.regions || []).includes(f.region)) return false;
  const port = f.port.trim().toUpperCase();
  if (port && ![sm.port_of_discharge, sm.final_destination].some((v) => String(v || '').toUpperCase() === port)) return false;
  if (f.family && !(sm.families || []).includes(f.family)) return false;
  const q = f.q.trim().toLowerCase();
  if (q) {
    if (![sm.container_number, sm.bill_of_lading, sm.shipper, sm.consignee]
      .some((v) => String(v || '').toLowerCase().includes(q))) return false;
  }
  return true;
}

// Hub order: highest priority first, newest event first, then alert id.
function compare(a, b) {
  return (priorityRank(b.priority) - priorityRank(a.priority)) ||
    (num(b.event_time_ms) - num(a.event_time_ms)) ||
    (a.alert_id < b.alert_id ? -1 : a.alert_id > b.alert_id ? 1 : 0);
}

function rowFor(sm) {
  const wf = sm.workflow || {};
  const status = wf.status || 'new';
  const href = alertHref(sm.alert_id);
  const tr = h('tr', {
    class: ['alert-row', priorityClass(sm.priority), `row-status-${status}`, wf.acknowledged_by ? 'acknowledged' : 'unacknowledged'],
    dataset: { alertId: sm.alert_id },
    tabIndex: 0,
    on: {
      click: (ev) => { if (!ev.target.closest('a')) location.hash = href; },
      keydown: (ev) => { if (ev.key === 'Enter') location.hash = href; },
    },
  },
  h('td', { class: 'c-priority' }, priorityBadge(sm.priority)),
  h('td', { class: 'c-container' }, h('a', { href, class: 'container-link', text: sm.container_number || sm.alert_id }),
    num(sm.sequence) > 1 ? h('span', { class: 'seq', text: `#${num(sm.sequence)}` }) : null),
  h('td', { class: 'c-score num', text: fmtScore(sm.score) }),
  h('td', { class: 'c-headline' }, h('span', { class: 'headline', text: sm.headline || '' }),
    (sm.families || []).map((f) => h('span', { class: `family family-${f}`, text: f }))),
  h('td', { class: 'c-route', text: fmtRoute(sm.port_of_discharge, sm.final_destination) }),
  h('td', { class: 'c-regions', text: (sm.regions || []).join(' ') }),
  h('td', { class: 'c-time' }, h('time', { dateTime: isoUtc(sm.event_time_ms), text: fmtUtc(sm.event_time_ms) })),
  h('td', { class: 'c-status' }, statusBadge(status), wf.acknowledged_by ? h('span', { class: 'ack-mark', title: `acknowledged by ${wf.acknowledged_by}`, text: '✓' }) : null),
  h('td', { class: 'c-assignee', text: wf.assignee || '' }));
  return tr;
}

function checkboxGroup(legend, name, values, selected, onChange) {
  return h('fieldset', { class: 'fgroup' }, h('legend', { text: legend }),
    values.map((v) => {
      const id = `filter-${name}-${v.toLowerCase()}`;
      return h('label', { class: `check check-${v.toLowerCase()}`, htmlFor: id },
        h('input', { type: 'checkbox', id, name, value: v, checked: selected.includes(v), on: { change: onChange } }), v);
    }));
}

export function mount(root) {
  document.title = 'Alert queue — boxwatch';
  let rows = [];          // Summaries shown, in order
  let total = 0;
  let newCount = 0;       // live alerts not shown because we are past page 1
  let loadSeq = 0;
  let debounce = 0;

  const tbody = h('tbody', { id: 'queue-body' });
  const tableEl = h('table', { id: 'queue-table', class: 'data queue-table' },
    h('thead', {}, h('tr', {}, ['Priority', 'Container', 'Score', 'Indicator', 'Discharge → destination', 'Regions', 'Event (UTC)', 'Status', 'Assignee']
      .map((t) => h('th', { text: t })))),
    tbody);
  const range = h('span', { id: 'queue-range', class: 'range', text: '…' });
  const prev = h('button', { id: 'queue-prev', type: 'button', class: 'btn', text: '‹ Prev' });
  const next = h('button', { id: 'queue-next', type: 'button', class: 'btn', text: 'Next ›' });
  const notice = h('button', { id: 'queue-new-notice', type: 'button', class: 'new-notice', hidden: true });
  const errorEl = h('p', { id: 'queue-error', class: 'form-error' });

  const readChecks = (name) => [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const applyNow = () => {
    filters.priorities = readChecks('priority');
    filters.statuses = readChecks('status');
    filters.region = regionSel.value;
    filters.port = portIn.value;
    filters.family = familySel.value;
    filters.q = qIn.value;
    filters.offset = 0;
    saveFilters();
    load();
  };
  const applySoon = () => { clearTimeout(debounce); debounce = setTimeout(applyNow, 300); };

  const regionSel = h('select', { id: 'filter-region', on: { change: applyNow } },
    h('option', { value: '', text: 'all my regions' }),
    userRegions().map((r) => h('option', { value: r, text: r })));
  regionSel.value = userRegions().includes(filters.region) ? filters.region : '';
  filters.region = regionSel.value;
  const portIn = h('input', { id: 'filter-port', type: 'text', size: 7, maxLength: 5, placeholder: 'THLCH', value: filters.port, on: { input: applySoon } });
  const familySel = h('select', { id: 'filter-family', on: { change: applyNow } },
    h('option', { value: '', text: 'any' }), FAMILIES.map((f) => h('option', { value: f, text: f })));
  familySel.value = filters.family;
  const qIn = h('input', { id: 'filter-q', type: 'search', size: 22, placeholder: 'container, B/L or party', value: filters.q, on: { input: applySoon } });
  const resetBtn = h('button', {
    id: 'filter-reset', type: 'button', class: 'btn btn-small', text: 'Reset',
    on: { click: () => { filters = defaults(); saveFilters(); clear(root); unmountFn(); unmountFn = mount(root); } },
  });

  const filterForm = h('form', { id: 'queue-filters', class: 'filters', on: { submit: (e) => { e.preventDefault(); applyNow(); } } },
    checkboxGroup('Priority', 'priority', PRIORITIES, filters.priorities, applyNow),
    checkboxGroup('Status', 'status', STATUSES, filters.statuses, applyNow),
    h('label', { class: 'field' }, h('span', { text: 'Region' }), regionSel),
    h('label', { class: 'field' }, h('span', { text: 'Port' }), portIn),
    h('label', { class: 'field' }, h('span', { text: 'Family' }), familySel),
    h('label', { class: 'field field-q' }, h('span', { text: 'Search' }), qIn),
    resetBtn);

  const section = h('section', { id: 'queue', class: 'queue' },
    h('div', { class: 'view-head' }, h('h1', { text: 'Alert queue' }), notice,
      h('div', { class: 'pager' }, prev, range, next)),
    filterForm, errorEl, h('div', { class: 'table-wrap' }, tableEl));
  root.append(section);

  function renderRange() {
    const from = total === 0 ? 0 : filters.offset + 1;
    const to = filters.offset + rows.length;
    range.textContent = `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(total)}`;
    prev.disabled = filters.offset === 0;
    next.disabled = filters.offset + LIMIT >= total;
  }

  function renderEmpty() {
    if (rows.length === 0) {
      const why = filters.priorities.length === 0 || filters.statuses.length === 0
        ? 'Select at least one priority and one status.' : 'No alerts match the filters.';
      clear(tbody, h('tr', { class: 'empty-row' }, h('td', { colSpan: 9, text: why })));
    }
  }

  function renderNotice() {
    notice.hidden = newCount === 0;
    notice.textContent = `${fmtInt(newCount)} new alert${newCount === 1 ? '' : 's'} — back to first page`;
  }

  async function load() {
    const seq = ++loadSeq;
    newCount = 0;
    renderNotice();
    errorEl.textContent = '';
    if (filters.priorities.length === 0 || filters.statuses.length === 0) {
      rows = []; total = 0; renderEmpty(); renderRange(); return;
    }
    tableEl.classList.add('loading');
    try {
      const answer = await api('GET', '/api/alerts', { query: queryFor(filters) });
      if (seq !== loadSeq) return;            // a newer load is under way
      rows = Array.isArray(answer.alerts) ? answer.alerts : [];
      total = num(answer.total);
      // Past the end (alerts closed meanwhile): go back a page.
      if (rows.length === 0 && filters.offset > 0 && total > 0) {
        filters.offset = Math.max(0, Math.floor((total - 1) / LIMIT) * LIMIT);
        saveFilters();
        load();
        return;
      }
      clear(tbody, rows.map(rowFor));
      renderEmpty();
      renderRange();
    } catch (e) {
      if (seq === loadSeq) errorEl.textContent = `could not load alerts: ${e.message}`;
    } finally {
      if (seq === loadSeq) tableEl.classList.remove('loading');
    }
  }

  function flash(tr, cls) {
    tr.classList.add(cls);
    setTimeout(() => tr.classList.remove(cls), 4000);
  }

  function onAlert(sm) {
    if (!sm || !sm.alert_id || !matches(sm, filters)) return;
    const existing = rows.findIndex((r) => r.alert_id === sm.alert_id);
    if (existing < 0) total += 1;
    if (filters.offset > 0) {
      newCount += 1;
      renderNotice();
      renderRange();
      return;
    }
    if (existing >= 0) {
      rows.splice(existing, 1);
      tbody.children[existing].remove();
    }
    let at = rows.findIndex((r) => compare(sm, r) < 0);
    if (at < 0) at = rows.length;
    if (at >= LIMIT) { renderRange(); return; }       // falls on a later page
    if (rows.length === 0) tbody.replaceChildren();  // drop the "no alerts" row
    const tr = rowFor(sm);
    tbody.insertBefore(tr, tbody.children[at] || null);
    rows.splice(at, 0, sm);
    if (rows.length > LIMIT) {
      rows.pop();
      tbody.lastElementChild.remove();
    }
    flash(tr, 'row-new');
    renderRange();
  }

  function onWorkflow(ev) {
    const i = rows.findIndex((r) => r.alert_id === ev.alert_id);
    if (i < 0 || !ev.workflow) return;
    rows[i] = { ...rows[i], workflow: ev.workflow };
    const tr = rowFor(rows[i]);
    // Kept in place until the next reload even when it no longer matches;
    // shown dimmed so the officer sees why it will go.
    if (!matches(rows[i], filters)) tr.classList.add('row-stale');
    tbody.children[i].replaceWith(tr);
    flash(tr, 'row-updated');
  }

  prev.addEventListener('click', () => { filters.offset = Math.max(0, filters.offset - LIMIT); saveFilters(); load(); });
  next.addEventListener('click', () => { filters.offset += LIMIT; saveFilters(); load(); });
  notice.addEventListener('click', () => { filters.offset = 0; saveFilters(); load(); });

  const unsubscribe = subscribe((type, data) => {
    if (type === 'alert') onAlert(data);
    else if (type === 'workflow') onWorkflow(data);
    else if (type === 'reset') load();
  });

  load();

  let unmountFn = () => { unsubscribe(); clearTimeout(debounce); loadSeq += 1; };
  return () => unmountFn();
}

// Examination sheet (#/alerts/{id}/sheet): one printed page the examining
// team takes to the container — what it is, why it was selected, what to
// look at, and boxes for findings and signatures.

import { clear, h } from './dom.js';
import { fmtInt, fmtKg, fmtRoute, fmtScore, fmtUtc, num, priorityClass, priorityName, enumName } from './format.js';
import { contextOf, currentUserName, loadAlert, manifestRoute, reasonText } from './detail.js';
import { session } from './session.js';
import { alertHref, priorityBadge } from './widgets.js';

// What to examine, from the indicators that fired. Matched on indicator id
// words and family; first the safety instruction, then the checks.
export function examinationSteps(alert) {
  const inds = alert.indicators || [];
  const ids = inds.map((i) => `${i.family || ''}.${i.id || ''}`.toLowerCase()).join(' ');
  const families = new Set(inds.map((i) => i.family));
  const steps = [];
  if (/radiation|neutron|gamma|rpm/.test(ids)) {
    steps.push('RADIATION: do not open the container. Keep people away and call the radiation safety officer; ' +
      'survey with a handheld identifier (RIID) before any other step.');
  }
  steps.push('Check the container number against this sheet; photograph doors, seals and placards before opening.');
  if (/seal|tamper/.test(ids) || families.has('gps')) {
    steps.push('Compare every seal with the declared numbers below; look for cut, re-glued or replaced seals and ' +
      'for tampering of door hinges and locking bars.');
  }
  if (/stop|corridor|route|deviat|gap/.test(ids)) {
    steps.push('Unscheduled stop or route deviation: look for cargo added or removed — gaps or foreign packages in ' +
      'the load, false walls, floor or roof panels.');
  }
  if (/xray|x_ray|nii|anomal|image/.test(ids) || (families.has('scan') && !/radiation|neutron|gamma|rpm/.test(ids))) {
    steps.push('X-ray anomaly: examine the flagged area of the image first; compare density and shape with the declared goods.');
  }
  if (/weight/.test(ids)) steps.push('Weigh the container; compare with declared gross weight plus tare.');
  if (families.has('manifest')) {
    steps.push('Verify goods against the declaration: descriptions, HS codes, package count and type, marks; ' +
      'open a sample of packages from different positions in the load.');
  }
  if (families.has('history')) steps.push('Earlier findings on this container or its parties: examine the same concealment areas.');
  if (families.has('selection') || inds.length === 0) steps.push('Random selection: standard examination of the load.');
  return steps;
}

function box(label, cls = '') {
  return h('div', { class: ['sign-box', cls] }, h('span', { class: 'sign-label', text: label }));
}

function render(el, { alert, summary = {} }) {
  const ctx = contextOf(alert);
  const m = ctx.manifest || {};
  const goods = m.goods || [];
  const inds = [...(alert.indicators || [])].sort((a, b) => (b.critical ? 1 : 0) - (a.critical ? 1 : 0));
  const route = manifestRoute(m).map((r) => r.code);

  clear(el,
    h('div', { class: 'sheet-actions no-print' },
      h('a', { href: alertHref(alert.alert_id), text: '← back to the alert' }),
      h('button', { id: 'print-button', type: 'button', class: 'btn btn-primary', text: 'Print', on: { click: () => window.print() } })),
    h('article', { id: 'exam-sheet', class: ['sheet', priorityClass(alert.priority)] },
      h('header', { class: 'sheet-head' },
        h('div', {},
          h('div', { class: 'sheet-title', text: 'Container examination sheet' }),
          h('div', { class: 'muted', text: `boxwatch · hub ${session.hubId || '—'} · printed ${fmtUtc(Date.now())} by ${currentUserName()}` })),
        h('div', { class: 'sheet-prio' }, priorityBadge(alert.priority), h('span', { text: ` score ${fmtScore(alert.score)}` }))),
      h('div', { class: 'sheet-ident' },
        h('div', { class: 'sheet-container', id: 'sheet-container', text: alert.container_number || '' }),
        h('div', { class: 'sheet-facts' },
          h('div', { text: `alert ${alert.alert_id} · ${priorityName(alert.priority)} · ${reasonText(alert)}` }),
          h('div', { text: `event ${fmtUtc(alert.event_time_ms)} · lane ${enumName(alert.lane, 'LANE_', { 1: 'GREEN', 2: 'YELLOW', 3: 'RED' }) || '—'} · status ${(summary.workflow || {}).status || 'new'}` }),
          h('div', { text: `B/L ${m.bill_of_lading || '—'} · ${m.container_size_type || ''} · tare ${num(m.tare_weight_kg) ? fmtKg(m.tare_weight_kg) : '—'}` }))),

      h('h3', { text: 'Why selected' }),
      inds.length
        ? h('ol', { class: 'sheet-reasons' }, inds.map((i) => h('li', { class: i.critical ? 'critical' : '' },
          i.critical ? h('strong', { text: 'CRITICAL ' }) : null, i.summary || i.id || '', h('span', { class: 'muted', text: ` [${i.id}]` }))))
        : h('p', { text: reasonText(alert) }),

      h('h3', { text: 'What to examine' }),
      h('ul', { class: 'checklist', id: 'sheet-steps' }, examinationSteps(alert).map((t) => h('li', { text: t }))),

      h('div', { class: 'sheet-cols' },
        h('div', {},
          h('h3', { text: 'Route' }),
          h('p', { text: fmtRoute(route) }),
          h('p', { class: 'muted', text: `vessel ${m.vessel_name || '—'} (IMO ${m.vessel_imo || alert.vessel_imo || '—'}) · voyage ${m.voyage || '—'}` }),
          h('p', {}, h('strong', { text: 'Shipper ' }), (m.shipper && m.shipper.name) || '—'),
          h('p', {}, h('strong', { text: 'Consignee ' }), (m.consignee && m.consignee.name) || '—')),
        h('div', {},
          h('h3', { text: 'Seals declared' }),
          (m.seal_numbers || []).length
            ? h('table', { class: 'data compact sheet-seals' },
              h('thead', {}, h('tr', {}, ['Declared', 'Found', 'Intact'].map((t) => h('th', { text: t })))),
              h('tbody', {}, m.seal_numbers.map((sn) => h('tr', {}, h('td', { class: 'mono', text: sn }), h('td', {}), h('td', { text: '☐ yes ☐ no' })))))
            : h('p', { text: 'none declared' }))),

      h('h3', { text: 'Goods declared' }),
      h('table', { class: 'data compact sheet-goods' },
        h('thead', {}, h('tr', {}, ['HS code', 'Description', 'Packages', 'Gross weight', 'Found'].map((t) => h('th', { text: t })))),
        h('tbody', {}, goods.length
          ? goods.map((g) => h('tr', {},
            h('td', { class: 'mono', text: g.hs_code || '—' }),
            h('td', { text: g.description || '—' }),
            h('td', { class: 'num', text: `${fmtInt(g.packages)} ${g.package_type || ''}`.trim() }),
            h('td', { class: 'num', text: fmtKg(g.gross_weight_kg) }),
            h('td', { class: 'found' })))
          : h('tr', {}, h('td', { colSpan: 5, text: 'no manifest in force' })))),

      h('h3', { text: 'Result' }),
      h('p', { class: 'result-boxes', text: '☐ no finding    ☐ discrepancy    ☐ seizure    — quantity / categories:' }),
      h('div', { class: 'sign-grid' },
        box('Findings', 'wide tall'),
        box('Seals affixed after examination', 'wide'),
        box('Examining officer — name'), box('Signature'), box('Date / time (UTC)'),
        box('Witness / supervisor — name'), box('Signature'), box('Site'))));
}

export function mount(root, { id }) {
  const el = h('div', { id: 'sheet-view', class: 'sheet-view' }, h('p', { class: 'muted', text: 'loading …' }));
  root.append(el);
  document.body.classList.add('printing-sheet');
  let alive = true;
  loadAlert(id, { useCache: true }).then((data) => { if (alive) render(el, data); }).catch((e) => {
    if (alive && e.status !== 401) clear(el, h('p', { class: 'view-error', text: `Could not load alert ${id}: ${e.message}` }));
  });
  return () => { alive = false; document.body.classList.remove('printing-sheet'); };
}

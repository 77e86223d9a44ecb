// Alert detail (#/alerts/{id}): the case file of one alert. Explanation of
// the score, the manifest in force, scans, earlier outcomes, a timeline, the
// map of the track, and the officer's actions (workflow, outcome).

import { api, ApiError } from './api.js';
import { clear, defList, h } from './dom.js';
import {
  enumName, fmtDuration, fmtInt, fmtKg, fmtNum, fmtRoute, fmtScore, fmtUtc, isoUtc, num,
  priorityClass, priorityName,
} from './format.js';
import { subscribe } from './live.js';
import { renderMap } from './map.js';
import { alertHref, priorityBadge, statusBadge } from './widgets.js';
import { isSupervisor, session } from './session.js';

const STATUSES = ['new', 'assigned', 'inspecting', 'closed'];
const RESULTS = ['NO_FINDING', 'DISCREPANCY', 'SEIZURE'];
// outcome.proto SeizureCategory, without the prefix and UNSPECIFIED.
export const SEIZURE_CATEGORIES = ['DRUGS', 'WEAPONS', 'AMMUNITION', 'EXPLOSIVES', 'TOBACCO', 'ALCOHOL',
  'WILDLIFE', 'PRECURSORS', 'COUNTERFEIT', 'PEOPLE', 'CASH', 'RADIOACTIVE', 'OTHER'];
const FAMILY_ORDER = ['scan', 'gps', 'manifest', 'history', 'selection'];

const REASONS = {
  FIRST_PRIORITY: 'first alert at this priority',
  PRIORITY_RAISED: 'priority raised',
  NEW_CRITICAL_INDICATOR: 'new critical indicator',
  RANDOM_SELECTION: 'random selection',
};

export function reasonText(alert) {
  const r = enumName(alert.reason, 'ALERT_REASON_', { 1: 'FIRST_PRIORITY', 2: 'PRIORITY_RAISED', 3: 'NEW_CRITICAL_INDICATOR', 4: 'RANDOM_SELECTION' });
  return REASONS[r] || (r && r !== 'UNSPECIFIED' ? r.toLowerCase().replace(/_/g, ' ') : 'not given');
}

// The last alert fetched, so that the examination sheet opened from the
// detail does not fetch (and audit-log a view) again.
let cached = null;

export async function loadAlert(id, { useCache = false } = {}) {
  if (useCache && cached && cached.id === id) return cached.data;
  const data = await api('GET', `/api/alerts/${encodeURIComponent(id)}`);
  if (!data || !data.alert) throw new ApiError(500, 'the hub sent no alert');
  cached = { id, data };
  return data;
}

export function contextOf(alert) {
  return alert.context || {};
}

// Manifest route as a list of {code, role, field}.
export function manifestRoute(m) {
  const stops = [];
  if (m.port_of_loading) stops.push({ code: m.port_of_loading, role: 'loading', field: 'port_of_loading' });
  (m.transhipment_ports || []).forEach((p, i) => stops.push({ code: p, role: 'transhipment', field: `transhipment_ports[${i}]` }));
  if (m.port_of_discharge) stops.push({ code: m.port_of_discharge, role: 'discharge', field: 'port_of_discharge' });
  if (m.final_destination) stops.push({ code: m.final_destination, role: 'final destination', field: 'final_destination' });
  return stops;
}

export function scanKind(scan) {
  const k = enumName(scan.kind, 'SCAN_KIND_', { 1: 'NII_XRAY', 2: 'RPM' });
  if (k && k !== 'UNSPECIFIED') return k;
  if (scan.rpm) return 'RPM';
  if (scan.nii) return 'NII_XRAY';
  return 'UNSPECIFIED';
}

export function verdictName(nii) {
  return enumName(nii.verdict, 'VERDICT_', { 1: 'CLEAR', 2: 'INCONCLUSIVE', 3: 'SUSPICIOUS' }) || 'UNSPECIFIED';
}

export function resultName(outcome) {
  return enumName(outcome.result, 'RESULT_', { 1: 'NO_FINDING', 2: 'DISCREPANCY', 3: 'SEIZURE' }) || 'UNSPECIFIED';
}

export function categoryNames(outcome) {
  return (outcome.seizure_categories || []).map((c) =>
    enumName(c, 'SEIZURE_CATEGORY_', Object.fromEntries(SEIZURE_CATEGORIES.map((n, i) => [i + 1, n]))));
}

function section(id, title, ...children) {
  return h('section', { id, class: 'panel' }, h('h2', { text: title }), ...children);
}

function note(text, cls = 'muted') {
  return h('p', { class: cls, text });
}

// ---------------------------------------------------------------- header

function header(alert, summary) {
  const wf = summary.workflow || {};
  return h('div', { id: 'alert-header', class: ['alert-header', priorityClass(alert.priority || summary.priority)] },
    h('div', { class: 'ah-main' },
      priorityBadge(alert.priority || summary.priority),
      h('h1', { id: 'alert-container', text: alert.container_number || summary.container_number || '' }),
      h('span', { class: 'ah-score', title: 'risk score' }, 'score ', h('strong', { id: 'alert-score', text: fmtScore(alert.score) })),
      h('span', { id: 'detail-status', class: 'ah-status' }, statusBadge(wf.status))),
    h('div', { class: 'ah-meta' },
      h('span', {}, 'alert ', h('code', { id: 'alert-id', text: alert.alert_id || '' }), ` · #${num(alert.sequence)}`),
      h('span', { id: 'alert-reason' }, `reason: ${reasonText(alert)}`),
      h('span', { id: 'alert-profile' }, `profile ${alert.profile_name || '?'} ${alert.profile_version || ''}`),
      h('span', {}, `lane ${enumName(alert.lane, 'LANE_', { 1: 'GREEN', 2: 'YELLOW', 3: 'RED' }) || '—'}`),
      h('span', {}, 'event ', h('time', { dateTime: isoUtc(alert.event_time_ms), text: fmtUtc(alert.event_time_ms, { seconds: true }) })),
      h('span', { title: 'processing time at the worker' }, `emitted ${fmtUtc(alert.emit_time_ms, { seconds: true })}`),
      h('span', {}, `regions ${(alert.regions || []).join(' ') || '—'}`),
      h('span', {}, `route ${fmtRoute(alert.port_of_discharge, alert.final_destination)}`)),
    h('div', { class: 'ah-links no-print' },
      h('a', { href: '#/queue', text: '← queue' }),
      h('a', { id: 'sheet-link', href: `${alertHref(alert.alert_id)}/sheet`, class: 'btn btn-small', text: 'Print examination sheet' })));
}

// ----------------------------------------------------------- explanation

function explanation(alert) {
  const inds = alert.indicators || [];
  const sum = inds.reduce((t, i) => t + num(i.contribution), 0);
  const score = num(alert.score) > 0 ? num(alert.score) : sum;
  const share = (c) => (score > 0 ? Math.max(0, Math.min(1, num(c) / score)) : 0);

  // Score by family: one stacked bar and a small table.
  const byFamily = new Map();
  for (const ind of inds) {
    const f = ind.family || 'other';
    const e = byFamily.get(f) || { total: 0, count: 0 };
    e.total += num(ind.contribution); e.count += 1;
    byFamily.set(f, e);
  }
  const families = [...byFamily.keys()].sort((a, b) =>
    ((FAMILY_ORDER.indexOf(a) + 1 || 99) - (FAMILY_ORDER.indexOf(b) + 1 || 99)));
  const stack = h('div', { class: 'stackbar', id: 'score-breakdown-bar' },
    families.map((f) => h('span', { class: `seg fam-${f}`, title: `${f}: ${fmtScore(byFamily.get(f).total)}`, style: { width: `${(share(byFamily.get(f).total) * 100).toFixed(1)}%` } })));
  const breakdown = h('table', { id: 'score-breakdown', class: 'data compact breakdown' },
    h('thead', {}, h('tr', {}, ['Family', 'Indicators', 'Points', 'Share'].map((t) => h('th', { text: t })))),
    h('tbody', {},
      families.map((f) => h('tr', {},
        h('td', {}, h('span', { class: `swatch fam-${f}` }), f),
        h('td', { class: 'num', text: String(byFamily.get(f).count) }),
        h('td', { class: 'num', text: fmtScore(byFamily.get(f).total) }),
        h('td', { class: 'num', text: `${Math.round(share(byFamily.get(f).total) * 100)} %` }))),
      h('tr', { class: 'total' }, h('td', { text: 'score' }), h('td', { class: 'num', text: String(inds.length) }),
        h('td', { class: 'num', text: fmtScore(alert.score) }), h('td', {}))));

  const list = h('ol', { class: 'indicators', id: 'indicator-list' },
    inds.map((ind) => h('li', { class: ['indicator', ind.critical ? 'critical' : '', `fam-border-${ind.family || 'other'}`], dataset: { indicatorId: ind.id || '' } },
      h('div', { class: 'ind-head' },
        h('code', { class: 'ind-id', text: ind.id || '?' }),
        h('span', { class: `family family-${ind.family || 'other'}`, text: ind.family || '?' }),
        ind.critical ? h('span', { class: 'badge badge-critical', text: 'critical' }) : null,
        h('span', { class: 'ind-contrib', title: 'score points' }, `+${fmtScore(ind.contribution)}`),
        h('span', { class: 'bar', title: `${Math.round(share(ind.contribution) * 100)} % of the score` },
          h('span', { class: `bar-fill fam-${ind.family || 'other'}`, style: { width: `${(share(ind.contribution) * 100).toFixed(1)}%` } })),
        h('span', { class: 'ind-share', text: `${Math.round(share(ind.contribution) * 100)} %` })),
      h('p', { class: 'ind-summary', text: ind.summary || '' }),
      (ind.evidence || []).length ? defList((ind.evidence || []).map((e) => [e.key || '', e.value || '']), 'kv evidence') : null,
      num(ind.fired_at_ms) ? h('p', { class: 'ind-time muted', text: `fired ${fmtUtc(ind.fired_at_ms, { seconds: true })}` }) : null)));

  return section('explanation', 'Explanation',
    inds.length ? null : note(`No indicator fired (${reasonText(alert)}).`),
    h('div', { class: 'breakdown-wrap' }, stack, breakdown),
    list);
}

// -------------------------------------------------------------- manifest

function party(title, p, unusable, field) {
  if (!p || !(p.name || p.address || p.country || p.id)) {
    return h('div', { class: 'party empty' }, h('h3', { text: title }), note('not declared'));
  }
  return h('div', { class: ['party', unusable.has(field) ? 'unusable' : ''] },
    h('h3', { text: title }),
    h('div', { class: 'party-name', text: p.name || '—' }),
    p.address ? h('div', { class: 'party-address', text: p.address }) : null,
    h('div', { class: 'party-meta' }, p.country ? `country ${p.country}` : '', p.id ? ` · id ${p.id}` : ''));
}

function manifestSection(alert) {
  const ctx = contextOf(alert);
  const m = ctx.manifest;
  if (!m) return section('manifest', 'Manifest in force', note('No manifest in force at the event time.'));
  const unusable = new Set(m.unusable_fields || []);
  const mark = (field, el) => {
    if (unusable.has(field)) { el.classList.add('unusable'); el.title = `${field}: value could not be used`; }
    return el;
  };

  const goods = m.goods || [];
  const totalPkgs = goods.reduce((t, g) => t + num(g.packages), 0);
  const totalKg = goods.reduce((t, g) => t + num(g.gross_weight_kg), 0);
  const goodsTable = h('table', { id: 'goods-table', class: 'data compact' },
    h('thead', {}, h('tr', {}, ['#', 'HS code', 'Description', 'Packages', 'Gross weight'].map((t) => h('th', { text: t })))),
    h('tbody', {},
      goods.map((g, i) => h('tr', {},
        h('td', { class: 'num', text: String(i + 1) }),
        mark(`goods[${i}].hs_code`, h('td', { class: 'mono', text: g.hs_code || '—' })),
        mark(`goods[${i}].description`, h('td', { class: 'goods-desc', text: g.description || '—' })),
        mark(`goods[${i}].packages`, h('td', { class: 'num', text: `${fmtInt(g.packages)} ${g.package_type || ''}`.trim() })),
        mark(`goods[${i}].gross_weight_kg`, h('td', { class: 'num', text: fmtKg(g.gross_weight_kg) })))),
      h('tr', { class: 'total' }, h('td', {}), h('td', {}), h('td', { text: `${goods.length} line${goods.length === 1 ? '' : 's'}` }),
        h('td', { class: 'num', text: fmtInt(totalPkgs) }), h('td', { class: 'num', text: fmtKg(totalKg) }))));

  const route = h('ol', { class: 'route', id: 'manifest-route' },
    manifestRoute(m).map((st) => mark(st.field, h('li', { class: `route-stop role-${st.role.replace(/ /g, '-')}` },
      h('span', { class: 'code', text: st.code }), h('span', { class: 'route-role', text: st.role })))));

  const amended = m.amended_fields || [];
  const freight = enumName(m.freight_payment, 'FREIGHT_PAYMENT_', { 1: 'PREPAID', 2: 'COLLECT', 3: 'CASH', 4: 'THIRD_PARTY' });

  return section('manifest', 'Manifest in force',
    unusable.size ? h('div', { class: 'warn-box', id: 'unusable-fields' },
      h('strong', { text: 'Unusable fields: ' }), [...unusable].join(', '),
      h('span', { class: 'muted', text: ' — values that could not be used were cleared.' })) : null,
    h('div', { class: 'manifest-grid' },
      defList([
        ['Bill of lading', m.bill_of_lading],
        ['Version', `v${num(m.version) || 1}${num(ctx.manifest_versions) ? ` (${num(ctx.manifest_versions)} received)` : ''}`],
        ['Amended fields', amended.length ? h('span', {}, amended.map((f) => h('span', { class: 'tag tag-amended', text: f }))) : ''],
        ['Declared at', fmtUtc(m.declared_at_ms)],
        ['ETA', num(m.eta_ms) ? fmtUtc(m.eta_ms) : ''],
        ['Freight payment', freight && freight !== 'UNSPECIFIED' ? freight.replace('_', ' ') : ''],
      ]),
      defList([
        ['Vessel', m.vessel_name],
        ['IMO', m.vessel_imo || alert.vessel_imo],
        ['Voyage', m.voyage],
        ['Carrier', m.carrier_scac],
        ['Container type', m.container_size_type],
        ['Tare', num(m.tare_weight_kg) ? fmtKg(m.tare_weight_kg) : ''],
      ])),
    h('h3', { text: 'Route' }), route,
    h('div', { class: 'parties' },
      party('Shipper', m.shipper, unusable, 'shipper'),
      party('Consignee', m.consignee, unusable, 'consignee'),
      party('Notify party', m.notify_party, unusable, 'notify_party')),
    h('h3', { text: 'Goods' }), goodsTable,
    h('h3', { text: 'Seals' }),
    (m.seal_numbers || []).length
      ? h('ul', { class: 'seals', id: 'seal-list' }, m.seal_numbers.map((sn) => h('li', { class: 'mono', text: sn })))
      : note('no seal declared', 'muted warn-text'));
}

// ----------------------------------------------------------------- scans

function ratio(v, bg) {
  return num(bg) > 0 ? ` (×${fmtNum(num(v) / num(bg), 1)})` : '';
}

function declaredGross(m) {
  if (!m) return 0;
  return (m.goods || []).reduce((t, g) => t + num(g.gross_weight_kg), 0) + num(m.tare_weight_kg);
}

function scanReading(scan, manifest) {
  if (scan.rpm) {
    const r = scan.rpm;
    return h('div', { class: 'reading' },
      h('div', { class: ['rpm-line', r.gamma_alarm ? 'alarm' : ''] },
        h('span', { class: 'lbl', text: 'gamma' }),
        `${fmtNum(r.gamma_cps)} cps vs background ${fmtNum(r.gamma_background_cps)} cps${ratio(r.gamma_cps, r.gamma_background_cps)}`,
        r.gamma_alarm ? h('span', { class: 'badge badge-critical', text: 'GAMMA ALARM' }) : h('span', { class: 'ok-text', text: ' no alarm' })),
      h('div', { class: ['rpm-line', r.neutron_alarm ? 'alarm' : ''] },
        h('span', { class: 'lbl', text: 'neutron' }),
        `${fmtNum(r.neutron_cps)} cps vs background ${fmtNum(r.neutron_background_cps)} cps${ratio(r.neutron_cps, r.neutron_background_cps)}`,
        r.neutron_alarm ? h('span', { class: 'badge badge-critical', text: 'NEUTRON ALARM' }) : h('span', { class: 'ok-text', text: ' no alarm' })),
      num(r.occupancy_seconds) ? h('div', { class: 'muted', text: `occupancy ${fmtNum(r.occupancy_seconds)} s` }) : null);
  }
  if (scan.nii) {
    const n = scan.nii;
    const verdict = verdictName(n);
    const declared = declaredGross(manifest);
    const est = n.estimated_weight_kg;
    let weight = null;
    if (est !== undefined && est !== null) {
      const diff = declared > 0 ? (num(est) - declared) / declared : null;
      weight = h('div', {}, h('span', { class: 'lbl', text: 'est. weight' }), fmtKg(est),
        declared > 0 ? h('span', { class: Math.abs(diff) > 0.1 ? 'warn-text' : 'muted', text: ` vs declared ${fmtKg(declared)} incl. tare (${diff >= 0 ? '+' : ''}${Math.round(diff * 100)} %)` }) : null);
    }
    return h('div', { class: 'reading' },
      h('div', {}, h('span', { class: 'lbl', text: 'verdict' }), h('span', { class: `verdict verdict-${verdict.toLowerCase()}`, text: verdict }),
        h('span', { class: 'muted', text: ` anomaly score ${fmtNum(n.anomaly_score, 2)}` })),
      weight,
      n.analyst_note ? h('div', { class: 'analyst-note' }, h('span', { class: 'lbl', text: 'analyst' }), n.analyst_note) : null,
      n.image_ref ? h('div', { class: 'muted' }, h('span', { class: 'lbl', text: 'image' }), h('code', { text: n.image_ref })) : null);
  }
  return note('no result');
}

function scansSection(alert) {
  const ctx = contextOf(alert);
  const scans = ctx.scans || [];
  if (!scans.length) return section('scans', 'Scans', note('No scan up to the event time.'));
  return section('scans', 'Scans',
    h('table', { class: 'data compact scans-table' },
      h('thead', {}, h('tr', {}, ['Time (UTC)', 'Site / device', 'Kind', 'Reading'].map((t) => h('th', { text: t })))),
      h('tbody', {}, scans.map((sc) => {
        const alarm = (sc.rpm && (sc.rpm.gamma_alarm || sc.rpm.neutron_alarm)) || (sc.nii && verdictName(sc.nii) === 'SUSPICIOUS');
        return h('tr', { class: alarm ? 'scan-alarm' : '' },
          h('td', { class: 'nowrap', text: fmtUtc(sc.scanned_at_ms, { seconds: true }) }),
          h('td', {}, h('div', { text: sc.site || '—' }), h('div', { class: 'muted mono', text: sc.device_id || '' })),
          h('td', { text: scanKind(sc) === 'NII_XRAY' ? 'X-ray (NII)' : scanKind(sc) }),
          h('td', {}, scanReading(sc, ctx.manifest)));
      }))));
}

// -------------------------------------------------------------- outcomes

function outcomesSection(alert) {
  const outcomes = contextOf(alert).outcomes || [];
  if (!outcomes.length) return section('outcomes', 'Earlier inspection outcomes', note('No earlier inspection of this container.'));
  return section('outcomes', 'Earlier inspection outcomes',
    h('table', { class: 'data compact' },
      h('thead', {}, h('tr', {}, ['Inspected (UTC)', 'Site', 'Unit', 'Result', 'Seized', 'Quantity', 'Notes', 'Final', 'Alert'].map((t) => h('th', { text: t })))),
      h('tbody', {}, outcomes.map((o) => {
        const res = resultName(o);
        return h('tr', { class: `outcome-${res.toLowerCase()}` },
          h('td', { class: 'nowrap', text: fmtUtc(o.inspected_at_ms) }),
          h('td', { text: o.site || '' }),
          h('td', { text: o.officer_unit || '' }),
          h('td', {}, h('span', { class: `result result-${res.toLowerCase()}`, text: res.replace('_', ' ') })),
          h('td', { text: categoryNames(o).join(', ') }),
          h('td', { text: o.quantity_description || '' }),
          h('td', { class: 'notes', text: o.notes || '' }),
          h('td', { text: o.final ? 'yes' : 'no' }),
          h('td', {}, o.alert_id ? h('a', { href: alertHref(o.alert_id), text: o.alert_id }) : ''));
      }))));
}

// -------------------------------------------------------------- timeline

export function timelineItems(alert) {
  const ctx = contextOf(alert);
  const items = [];
  const add = (t, kind, text, cls = '') => { if (num(t)) items.push({ t: num(t), kind, text, cls }); };
  const m = ctx.manifest;
  if (m) {
    add(m.declared_at_ms, 'manifest', `Manifest v${num(m.version) || 1} filed (B/L ${m.bill_of_lading || '?'})` +
      ((m.amended_fields || []).length ? `, amended: ${m.amended_fields.join(', ')}` : ''));
    add(m.eta_ms, 'manifest', `ETA at ${m.port_of_discharge || 'port of discharge'}`, 'planned');
  }
  for (const sc of ctx.scans || []) {
    let what = '';
    let bad = false;
    if (sc.rpm) {
      const alarms = [sc.rpm.gamma_alarm ? 'gamma alarm' : '', sc.rpm.neutron_alarm ? 'neutron alarm' : ''].filter(Boolean);
      what = alarms.length ? alarms.join(', ') : 'no alarm';
      bad = alarms.length > 0;
    } else if (sc.nii) {
      what = `verdict ${verdictName(sc.nii)}`;
      bad = verdictName(sc.nii) === 'SUSPICIOUS';
    }
    add(sc.scanned_at_ms, 'scan', `${scanKind(sc) === 'NII_XRAY' ? 'X-ray' : scanKind(sc)} at ${sc.site || '?'} ${sc.device_id || ''}: ${what}`,
      bad ? 'bad' : '');
  }
  for (const ind of alert.indicators || []) {
    add(ind.fired_at_ms, 'indicator', `${ind.id} fired: ${ind.summary || ''}`, ind.critical ? 'bad' : '');
  }
  const track = ctx.track || [];
  if (track.length) {
    const f = track[0], l = track[track.length - 1];
    add(f.fix_time_ms, 'gps', `First GPS fix shown (${fmtNum(f.lat, 4)}, ${fmtNum(f.lon, 4)})` +
      (num(ctx.fixes_seen) > track.length ? ` — ${fmtInt(ctx.fixes_seen)} fixes in all` : ''));
    let lastSeal = '';
    for (const p of track) {
      const seal = enumName(p.seal_state, 'SEAL_STATE_', { 1: 'CLOSED', 2: 'OPENED', 3: 'TAMPERED' });
      if ((seal === 'OPENED' || seal === 'TAMPERED') && seal !== lastSeal) add(p.fix_time_ms, 'gps', `Seal reported ${seal}`, 'bad');
      if (seal) lastSeal = seal;
      if (p.border_geofence) add(p.fix_time_ms, 'gps', `Border geofence ${p.border_geofence}`);
    }
    if (track.length > 1) add(l.fix_time_ms, 'gps', `Last GPS fix (${fmtNum(l.lat, 4)}, ${fmtNum(l.lon, 4)}, ${fmtNum(l.speed_kmh, 0)} km/h)`);
  }
  for (const o of ctx.outcomes || []) {
    add(o.inspected_at_ms, 'outcome', `Inspection at ${o.site || '?'}: ${resultName(o).replace('_', ' ')}` +
      (o.quantity_description ? ` (${o.quantity_description})` : ''), resultName(o) === 'SEIZURE' ? 'bad' : '');
  }
  add(alert.event_time_ms, 'alert', `This alert: #${num(alert.sequence)} ${priorityName(alert.priority)}, score ${fmtScore(alert.score)}`, 'this');
  // Stable: equal times keep the order above (cause before alert).
  return items.map((it, i) => ({ ...it, i })).sort((a, b) => a.t - b.t || a.i - b.i);
}

function timelineSection(alert) {
  const items = timelineItems(alert);
  let prevT = 0;
  return section('timeline', 'Timeline',
    h('ol', { class: 'timeline', id: 'timeline-list' }, items.map((it) => {
      const gap = prevT ? it.t - prevT : 0;
      prevT = it.t;
      return h('li', { class: ['tl-item', `tl-${it.kind}`, it.cls ? `tl-${it.cls}` : ''] },
        h('time', { class: 'tl-time', dateTime: isoUtc(it.t), text: fmtUtc(it.t, { seconds: true }) }),
        h('span', { class: 'tl-kind', text: it.kind }),
        h('span', { class: 'tl-text', text: it.text }),
        gap >= 3600000 ? h('span', { class: 'tl-gap muted', text: `+${fmtDuration(gap)}` }) : null);
    })));
}

// ------------------------------------------------------------------- map

function mapSection(alert) {
  const wrap = h('div', { class: 'map-wrap' });
  const sec = section('map', 'Track and corridors', wrap);
  renderMap(wrap, contextOf(alert));
  return sec;
}

// -------------------------------------------------------------- workflow

function workflowPanel(alert, summary, onWorkflow) {
  const regions = alert.regions || summary.regions || [];
  const info = h('div', { id: 'workflow-info' });
  const errorEl = h('p', { id: 'workflow-error', class: 'form-error' });
  const statusSel = h('select', { id: 'status-select' }, STATUSES.map((st) => h('option', { value: st, text: st })));
  const assignSel = h('select', { id: 'assign-select' }, h('option', { value: '', text: 'loading users …' }));
  const buttons = [];

  function renderInfo(wf) {
    clear(info, defList([
      ['Status', h('span', { id: 'workflow-status' }, statusBadge(wf.status))],
      ['Assignee', wf.assignee || ''],
      ['Acknowledged', wf.acknowledged_by ? `${wf.acknowledged_by}, ${fmtUtc(wf.acknowledged_ms)}` : ''],
      ['Last change', wf.updated_by ? `${wf.updated_by}, ${fmtUtc(wf.updated_ms)}` : ''],
    ]));
    statusSel.value = wf.status || 'new';
    if (wf.assignee && [...assignSel.options].some((o) => o.value === wf.assignee)) assignSel.value = wf.assignee;
  }

  async function act(body, button) {
    errorEl.textContent = '';
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const answer = await api('POST', `/api/alerts/${encodeURIComponent(alert.alert_id)}/workflow`, { body });
      if (answer.workflow) onWorkflow(answer.workflow);
      button.classList.add('done');
      setTimeout(() => button.classList.remove('done'), 1500);
    } catch (e) {
      if (e.status !== 401) errorEl.textContent = e.status === 403 ? `not permitted: ${e.message}` : e.message;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  const ackBtn = h('button', { id: 'ack', type: 'button', class: 'btn btn-primary', text: 'Acknowledge' });
  ackBtn.addEventListener('click', () => act({ action: 'acknowledge' }, ackBtn));
  const statusBtn = h('button', { id: 'status-button', type: 'button', class: 'btn', text: 'Set status' });
  statusBtn.addEventListener('click', () => act({ action: 'status', status: statusSel.value }, statusBtn));
  buttons.push(ackBtn, statusBtn);

  let assignRow = null;
  if (isSupervisor()) {
    const assignBtn = h('button', { id: 'assign-button', type: 'button', class: 'btn', text: 'Assign' });
    assignBtn.addEventListener('click', () => {
      if (!assignSel.value) { errorEl.textContent = 'choose an officer to assign'; return; }
      act({ action: 'assign', assignee: assignSel.value }, assignBtn);
    });
    buttons.push(assignBtn);
    assignRow = h('div', { class: 'wf-row', id: 'assign-row' }, h('label', { htmlFor: 'assign-select', text: 'Assign to' }), assignSel, assignBtn);
    // Users who may take the alert: those of one of its regions.
    api('GET', '/api/users').then((answer) => {
      const users = (answer.users || []).filter((u) => (u.regions || []).some((r) => regions.includes(r)));
      clear(assignSel, h('option', { value: '', text: users.length ? 'choose …' : 'no user in these regions' }),
        users.map((u) => h('option', { value: u.name, text: `${u.name} (${u.role}; ${(u.regions || []).join(' ')})` })));
      const current = (summary.workflow || {}).assignee;
      if (current && users.some((u) => u.name === current)) assignSel.value = current;
    }).catch((e) => {
      clear(assignSel, h('option', { value: '', text: 'users unavailable' }));
      if (e.status !== 401) errorEl.textContent = `users: ${e.message}`;
    });
  }

  const panel = h('section', { id: 'workflow', class: 'panel side-panel' },
    h('h2', { text: 'Workflow' }), info,
    h('div', { class: 'wf-row' }, ackBtn),
    assignRow,
    h('div', { class: 'wf-row' }, h('label', { htmlFor: 'status-select', text: 'Status' }), statusSel, statusBtn),
    errorEl);
  renderInfo(summary.workflow || {});
  return { panel, renderInfo };
}

// --------------------------------------------------------------- outcome

function outcomeForm(alert, onWorkflow) {
  const site = alert.port_of_discharge || (contextOf(alert).manifest || {}).port_of_discharge || '';
  const resultSel = h('select', { id: 'outcome-result', name: 'result', required: true },
    RESULTS.map((r) => h('option', { value: r, text: r.replace('_', ' ') })));
  const cats = h('fieldset', { id: 'outcome-categories', class: 'categories' }, h('legend', { text: 'Seizure categories' }),
    SEIZURE_CATEGORIES.map((c) => h('label', { class: 'check', htmlFor: `outcome-cat-${c}` },
      h('input', { type: 'checkbox', id: `outcome-cat-${c}`, name: 'seizure_category', value: c }), c.toLowerCase())));
  const quantity = h('input', { id: 'outcome-quantity', type: 'text', placeholder: 'e.g. 120 kg cocaine' });
  const notes = h('textarea', { id: 'outcome-notes', rows: 3 });
  const siteIn = h('input', { id: 'outcome-site', type: 'text', value: site, placeholder: 'UN/LOCODE[-facility]' });
  const finalBox = h('input', { id: 'outcome-final', type: 'checkbox', checked: true });
  const submit = h('button', { id: 'outcome-submit', type: 'submit', class: 'btn btn-primary', text: 'Report outcome' });
  const resultText = h('p', { id: 'outcome-result-text', class: 'result-text', attrs: { 'aria-live': 'polite' } });

  const syncCats = () => cats.classList.toggle('inactive', resultSel.value !== 'SEIZURE');
  resultSel.addEventListener('change', syncCats);
  syncCats();

  const form = h('form', { id: 'outcome-form', class: 'panel side-panel outcome-form' },
    h('h2', { text: 'Inspection outcome' }),
    h('label', { htmlFor: 'outcome-result', text: 'Result' }), resultSel,
    cats,
    h('label', { htmlFor: 'outcome-quantity', text: 'Quantity' }), quantity,
    h('label', { htmlFor: 'outcome-notes', text: 'Notes' }), notes,
    h('label', { htmlFor: 'outcome-site', text: 'Site' }), siteIn,
    h('label', { class: 'check', htmlFor: 'outcome-final' }, finalBox, 'final (no further inspection expected; closes the alert)'),
    submit, resultText);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const result = resultSel.value;
    const body = {
      result,
      // Categories only belong to a seizure (outcome.proto).
      seizure_categories: result === 'SEIZURE'
        ? [...cats.querySelectorAll('input:checked')].map((i) => i.value) : [],
      quantity_description: quantity.value.trim(),
      notes: notes.value.trim(),
      site: siteIn.value.trim().toUpperCase(),
      final: finalBox.checked,
    };
    resultText.className = 'result-text';
    if (result === 'SEIZURE' && body.seizure_categories.length === 0) {
      resultText.classList.add('error');
      resultText.textContent = 'Choose at least one seizure category.';
      return;
    }
    submit.disabled = true;
    resultText.textContent = 'sending …';
    try {
      const answer = await api('POST', `/api/alerts/${encodeURIComponent(alert.alert_id)}/outcome`, { body });
      resultText.classList.add('ok');
      resultText.textContent = `Outcome recorded: ${answer.outcome_id || '(no id)'}${answer.accepted === false ? ' (not accepted)' : ''}`;
      if (answer.workflow) onWorkflow(answer.workflow);
    } catch (e) {
      resultText.classList.add('error');
      resultText.textContent = e.status === 401 ? '' : `Not recorded: ${e.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ------------------------------------------------------------ other alerts

function othersSection(others) {
  return h('section', { id: 'others', class: 'panel side-panel' },
    h('h2', { text: 'Other alerts of the container' }),
    others.length
      ? h('ul', { class: 'others' }, others.map((o) => h('li', { class: priorityClass(o.priority) },
        h('a', { href: alertHref(o.alert_id), class: 'other-link' }, priorityBadge(o.priority), ` ${o.alert_id}`),
        h('div', { class: 'muted', text: `${fmtUtc(o.event_time_ms)} · ${(o.workflow || {}).status || 'new'} · score ${fmtScore(o.score)}` }),
        o.headline ? h('div', { class: 'other-headline', text: o.headline }) : null)))
      : note('none at this hub'));
}

// ------------------------------------------------------------------ mount

export function mount(root, { id }) {
  const container = h('div', { id: 'alert-detail', class: 'detail' }, note('loading alert …', 'muted loading-text'));
  root.append(container);
  let alive = true;
  let unsubscribe = null;
  document.title = `${id} — boxwatch`;

  loadAlert(id).then(({ alert, summary = {}, others = [] }) => {
    if (!alive) return;
    const sum = { ...summary, workflow: summary.workflow || {} };
    document.title = `${alert.container_number || id} ${priorityName(alert.priority)} — boxwatch`;
    let wfPanel = null;
    const onWorkflow = (wf) => {
      sum.workflow = wf;
      if (cached && cached.id === id && cached.data.summary) cached.data.summary.workflow = wf;
      wfPanel.renderInfo(wf);
      const badge = container.querySelector('#detail-status');
      if (badge) clear(badge, statusBadge(wf.status));
    };
    wfPanel = workflowPanel(alert, sum, onWorkflow);
    clear(container,
      header(alert, sum),
      h('div', { class: 'detail-grid' },
        h('div', { class: 'detail-main' },
          explanation(alert), mapSection(alert), manifestSection(alert),
          scansSection(alert), outcomesSection(alert), timelineSection(alert)),
        h('aside', { class: 'detail-side' },
          wfPanel.panel, outcomeForm(alert, onWorkflow), othersSection(others))));
    unsubscribe = subscribe((type, data) => {
      if (type === 'workflow' && data.alert_id === alert.alert_id && data.workflow) onWorkflow(data.workflow);
    });
  }).catch((e) => {
    if (!alive || e.status === 401) return;
    clear(container, h('p', { class: 'view-error', id: 'detail-error',
      text: e.status === 404 ? `Alert ${id} not found (or not in your regions).` : `Could not load alert ${id}: ${e.message}` }),
    h('a', { href: '#/queue', text: '← back to the queue' }));
  });

  return () => { alive = false; if (unsubscribe) unsubscribe(); };
}

// Used by the sheet: the user who prints it.
export function currentUserName() {
  return (session.user && session.user.name) || '';
}

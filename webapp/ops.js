// Operations strip under the header: the hub's connection to the dispatcher,
// the live feed, alerts per minute by priority over the last 30 minutes and
// the time since the last alert. GET /api/status every 10 s.

import { api } from './api.js';
import { clear, h, s } from './dom.js';
import { fmtAgo, fmtInt, num, PRIORITIES } from './format.js';
import { subscribe, liveState } from './live.js';

const POLL_MS = 10000;
let pollTimer = 0;
let tickTimer = 0;
let unsubscribe = null;
let lastAlertMs = 0;
let onStatus = null;
let els = null;

function build() {
  const strip = document.getElementById('ops-strip');
  els = {
    connection: h('span', { id: 'ops-connection', class: 'ops-item ops-state' }, 'status …'),
    live: h('span', { id: 'ops-live', class: 'ops-item ops-state' }),
    stored: h('span', { id: 'ops-stored', class: 'ops-item' }),
    chart: h('span', { id: 'ops-rate', class: 'ops-item ops-rate' }),
    counts: h('span', { id: 'ops-counts', class: 'ops-item ops-counts' }),
    last: h('span', { id: 'ops-last-alert', class: 'ops-item' }),
  };
  clear(strip, els.connection, els.live, els.chart, els.counts, els.last, els.stored);
  renderLive(liveState());
}

function renderLive(state) {
  if (!els) return;
  const ok = state === 'live';
  els.live.className = `ops-item ops-state ${ok ? 'ok' : 'warn'}`;
  els.live.textContent = ok ? 'live feed on' : 'live feed reconnecting';
}

function renderLast() {
  if (els) els.last.textContent = `last alert ${fmtAgo(lastAlertMs)}`;
}

// The hub gives not_ready as a reason text; tolerate a list or an object.
function reasonText(v) {
  if (!v) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.join('; ');
  return JSON.stringify(v);
}

// 30 stacked bars, one per minute, CRITICAL on top.
function rateChart(perMinute) {
  const W = 150, H = 22, n = 30;
  const rows = perMinute.slice(-n);
  const totals = rows.map((m) => PRIORITIES.reduce((t, p) => t + num(m[p]), 0));
  const max = Math.max(1, ...totals);
  const bw = W / n;
  const svg = s('svg', { id: 'ops-rate-chart', class: 'rate-chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' },
    s('title', { text: 'alerts per minute by priority, last 30 minutes' }));
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, class: 'rate-bg' }));
  rows.forEach((m, i) => {
    const x = (n - rows.length + i) * bw;
    let y = H;
    for (const p of ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']) {
      const v = num(m[p]);
      if (!v) continue;
      const bh = (v / max) * (H - 2);
      y -= bh;
      svg.append(s('rect', { x: x + 0.5, y, width: Math.max(1, bw - 1), height: bh, class: `rate-${p.toLowerCase()}` },
        s('title', { text: `${new Date(num(m.minute_ms)).toISOString().slice(11, 16)}Z ${p} ${v}` })));
    }
  });
  return svg;
}

function render(st) {
  const connected = !!st.connected;
  els.connection.className = `ops-item ops-state ${connected ? 'ok' : 'bad'}`;
  els.connection.textContent = connected
    ? 'connected to dispatcher'
    : `not subscribed${reasonText(st.not_ready) ? `: ${reasonText(st.not_ready)}` : ''}`;
  els.stored.textContent = `${fmtInt(st.alerts_stored)} stored`;
  const perMinute = Array.isArray(st.per_minute) ? st.per_minute : [];
  clear(els.chart, rateChart(perMinute));
  const sums = Object.fromEntries(PRIORITIES.map((p) => [p, perMinute.reduce((t, m) => t + num(m[p]), 0)]));
  const lastMin = perMinute.length ? perMinute[perMinute.length - 1] : {};
  const total = PRIORITIES.reduce((t, p) => t + sums[p], 0);
  clear(els.counts,
    h('span', { class: 'ops-label', text: `30 min: ${fmtInt(total)} (${(total / 30).toFixed(1)}/min)` }),
    PRIORITIES.map((p) => h('span', { class: `count count-${p.toLowerCase()}`, title: `${p}: ${sums[p]} in 30 min, ${num(lastMin[p])} in the last minute` },
      `${p[0]} ${fmtInt(sums[p])}`)));
  lastAlertMs = Math.max(lastAlertMs, num(st.last_alert_ms));
  renderLast();
}

async function poll() {
  try {
    const st = await api('GET', '/api/status');
    if (!els) return;
    render(st);
    if (onStatus) onStatus(st);
  } catch (e) {
    if (els && e.status !== 401) {
      els.connection.className = 'ops-item ops-state bad';
      els.connection.textContent = `status unavailable: ${e.message}`;
    }
  }
}

export function startOps(statusCallback) {
  stopOps();
  onStatus = statusCallback;
  lastAlertMs = 0;
  build();
  poll();
  pollTimer = setInterval(poll, POLL_MS);
  tickTimer = setInterval(renderLast, 1000);
  unsubscribe = subscribe((type, data) => {
    if (type === 'state') renderLive(data);
    if (type === 'alert') {
      lastAlertMs = Math.max(lastAlertMs, num(data.stored_ms) || Date.now());
      renderLast();
    }
  });
}

export function stopOps() {
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  els = null;
}

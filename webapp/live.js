// The live feed: one EventSource on /api/events for the whole session,
// fanned out to whichever view is listening. Listeners get
//   ('alert', Summary), ('workflow', {alert_id, workflow}),
//   ('reset') after a reconnection: events may have been missed, reload,
//   ('state', 'live' | 'reconnecting').
// On "overflow" (the hub dropped us for lagging) or a connection error the
// source is closed and reopened after a back-off; the reopening emits
// 'reset'. A failed connection also probes the session, so that an expired
// session leads to the login form instead of endless retries.

import { api } from './api.js';

const listeners = new Set();
let source = null;
let retryTimer = 0;
let backoffMs = 1000;
let missed = false;      // events may have been lost since the last open
let running = false;
let state = 'reconnecting';

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function liveState() {
  return state;
}

function emit(type, data) {
  for (const fn of [...listeners]) {
    try { fn(type, data); } catch (e) { console.error('live listener', e); }
  }
}

function setState(next) {
  if (state !== next) { state = next; emit('state', next); }
}

function parse(ev) {
  try { return JSON.parse(ev.data); } catch { return null; }
}

function connect() {
  retryTimer = 0;
  if (!running) return;
  const es = new EventSource('/api/events');
  source = es;
  es.addEventListener('open', () => {
    backoffMs = 1000;
    setState('live');
    if (missed) { missed = false; emit('reset'); }
  });
  es.addEventListener('alert', (ev) => { const d = parse(ev); if (d) emit('alert', d); });
  es.addEventListener('workflow', (ev) => { const d = parse(ev); if (d) emit('workflow', d); });
  es.addEventListener('overflow', () => reconnect(0));
  es.addEventListener('error', () => {
    reconnect(backoffMs);
    backoffMs = Math.min(backoffMs * 2, 15000);
    // 401 here runs the session-expired handler (login form, stopLive).
    api('GET', '/api/session').catch(() => {});
  });
}

function reconnect(delayMs) {
  if (source) { source.close(); source = null; }
  missed = true;
  setState('reconnecting');
  if (running && !retryTimer) retryTimer = setTimeout(connect, delayMs);
}

export function startLive() {
  if (running) return;
  running = true;
  missed = false;
  connect();
}

export function stopLive() {
  running = false;
  clearTimeout(retryTimer);
  retryTimer = 0;
  if (source) { source.close(); source = null; }
  setState('reconnecting');
}

// Entry point: session handling, header, and the router on location.hash.
//   #/queue                  live alert queue (default)
//   #/alerts/{id}            alert detail
//   #/alerts/{id}/sheet      printable examination sheet
//   #/audit                  audit trail (supervisor, admin)
// Each view's mount(el, params) returns a function that unmounts it (closes
// its timers and live-feed subscriptions).

import { api, ApiError, onUnauthorized, setCsrfToken } from './api.js';
import { clear } from './dom.js';
import { session, isSupervisor } from './session.js';
import { startLive, stopLive } from './live.js';
import { startOps, stopOps } from './ops.js';
import * as queueView from './queue.js';
import * as detailView from './detail.js';
import * as sheetView from './sheet.js';
import * as auditView from './audit.js';

const $ = (id) => document.getElementById(id);
const viewEl = $('view');
let unmount = null;

function parseRoute(hash) {
  const path = (hash || '').replace(/^#/, '') || '/queue';
  const parts = path.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'alerts' && parts[1] && parts[2] === 'sheet') return { view: sheetView, params: { id: parts[1] }, nav: 'queue' };
  if (parts[0] === 'alerts' && parts[1]) return { view: detailView, params: { id: parts[1] }, nav: 'queue' };
  if (parts[0] === 'audit') return { view: auditView, params: {}, nav: 'audit' };
  if (parts[0] === 'queue') return { view: queueView, params: {}, nav: 'queue' };
  return null;
}

function route() {
  if (!session.user) return;
  const r = parseRoute(location.hash);
  if (!r) { location.hash = '#/queue'; return; }
  if (unmount) { unmount(); unmount = null; }
  clear(viewEl);
  window.scrollTo(0, 0);
  for (const [name, link] of [['queue', $('nav-queue')], ['audit', $('nav-audit')]]) {
    link.classList.toggle('active', r.nav === name);
  }
  unmount = r.view.mount(viewEl, r.params) || null;
}

function renderHeader() {
  const u = session.user;
  $('user-name').textContent = u.name || '';
  $('user-role').textContent = u.role || '';
  $('user-regions').textContent = (u.regions || []).join(' ');
  $('nav-audit').hidden = !isSupervisor();
  $('hub-id').textContent = session.hubId || '—';
  $('app-header').hidden = false;
  $('ops-strip').hidden = false;
  $('login').hidden = true;
}

function startSession(answer) {
  setCsrfToken(answer.csrf_token);
  session.user = answer.user || { name: '?', role: 'officer', regions: [] };
  renderHeader();
  startOps((status) => {
    session.hubId = status.hub_id || '';
    $('hub-id').textContent = session.hubId || '—';
  });
  startLive();
  route();
}

// Back to the login form: a missing or expired session, or a logout.
function showLogin(message = '') {
  stopLive();
  stopOps();
  if (unmount) { unmount(); unmount = null; }
  clear(viewEl);
  session.user = null;
  setCsrfToken('');
  $('app-header').hidden = true;
  $('ops-strip').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-password').value = '';
  $('login-submit').disabled = false;
  ($('login-username').value ? $('login-password') : $('login-username')).focus();
}

let lockTimer = 0;

// 429: count down the Retry-After seconds with the button disabled.
function lockLogin(seconds) {
  clearInterval(lockTimer);
  let left = Math.max(1, Math.ceil(seconds));
  const show = () => { $('login-error').textContent = `too many attempts, retry in ${left} s`; };
  $('login-submit').disabled = true;
  show();
  lockTimer = setInterval(() => {
    left -= 1;
    if (left <= 0) {
      clearInterval(lockTimer);
      $('login-submit').disabled = false;
      $('login-error').textContent = 'you may try again';
    } else show();
  }, 1000);
}

async function submitLogin(ev) {
  ev.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!username || !password) { $('login-error').textContent = 'enter user name and password'; return; }
  $('login-submit').disabled = true;
  $('login-error').textContent = '';
  try {
    const answer = await api('POST', '/api/session', { body: { username, password }, expect401: true });
    startSession(answer);
  } catch (e) {
    $('login-submit').disabled = false;
    $('login-password').value = '';
    if (e instanceof ApiError && e.status === 401) {
      $('login-error').textContent = 'wrong user name or password';
    } else if (e instanceof ApiError && e.status === 429) {
      const secs = e.retryAfter ?? (e.body && Number(e.body.retry_after_s)) ?? 60;
      lockLogin(Number.isFinite(secs) ? secs : 60);
    } else {
      $('login-error').textContent = `sign-in failed: ${e.message}`;
    }
  }
}

async function logout() {
  try { await api('DELETE', '/api/session'); } catch { /* the session ends here anyway */ }
  showLogin('signed out');
}

async function boot() {
  onUnauthorized(() => { if (session.user) showLogin('session expired — sign in again'); });
  $('login-form').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  try {
    startSession(await api('GET', '/api/session', { expect401: true }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin();
    else {
      showLogin();
      $('login-error').textContent = `hub unavailable: ${e.message}`;
    }
  }
}

boot();


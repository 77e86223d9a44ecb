// The hub's JSON API (docs/design/control-room-api.md). Requests go with the
// session cookie (same origin); state-changing ones (POST, DELETE) carry the
// session's CSRF token. A 401 on any call other than the login itself means
// the session is gone: the registered handler shows the login form.

let csrfToken = '';
let unauthorizedHandler = null;

export class ApiError extends Error {
  constructor(status, message, body = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || '';
}

export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// Query string from an object, leaving out empty values.
export function queryString(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const str = q.toString();
  return str ? `?${str}` : '';
}

// api('GET', '/api/alerts', {query: {...}}); api('POST', path, {body: {...}}).
// opts.expect401: the caller handles 401 itself (login, session probe).
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if ((method === 'POST' || method === 'DELETE') && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let resp;
  try {
    resp = await fetch(path + queryString(opts.query), init);
  } catch (e) {
    throw new ApiError(0, `hub unreachable (${e.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }

  if (!resp.ok) {
    const message = (data && typeof data.error === 'string' && data.error) ||
      `${resp.status} ${resp.statusText || 'error'}`;
    const retryAfter = resp.headers.get('Retry-After');
    const err = new ApiError(resp.status, message, data, retryAfter === null ? null : Number(retryAfter));
    if (resp.status === 401 && !opts.expect401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return data ?? {};
}

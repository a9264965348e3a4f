// Calls to the gateway's JSON API. The session cookie set by /api/login
// rides along (same origin); every call has a time limit.

const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let resp;
  try {
    resp = await fetch(path, { credentials: 'same-origin', signal: ctl.signal, ...options });
  } catch (e) {
    throw new ApiError(0, e.name === 'AbortError' ? `no answer from ${path} within ${TIMEOUT_MS / 1000} s` : `network error: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!resp.ok) {
    const message = (body && body.error) || text.trim() || `HTTP ${resp.status}`;
    throw new ApiError(resp.status, message);
  }
  return body;
}

export function post(path, data) {
  return api(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
}

// Who is logged in (the cookie is HttpOnly, so the page asks).
export const session = { user: null, role: null, anonymousRead: false, site: '' };
const listeners = new Set();

export function onSession(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export async function refreshSession() {
  const s = await api('/api/session');
  session.user = s.user;
  session.role = s.role;
  session.anonymousRead = s.anonymous_read;
  session.site = s.site;
  listeners.forEach((fn) => fn(session));
  return session;
}

export function isOperator() {
  return session.role === 'operator' || session.role === 'admin';
}

export async function login(user, password) {
  await post('/api/login', { user, password });
  return refreshSession();
}

export async function logout() {
  try { await post('/api/logout'); } catch { /* already logged out */ }
  return refreshSession();
}

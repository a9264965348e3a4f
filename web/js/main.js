// The dashboard shell: hash routes, the login dialog, the live status and
// the alarm count in the header.

import { ApiError, refreshSession, login, logout, session, onSession } from './api.js';
import { h, clear, message, link } from './dom.js';
import * as live from './live.js';
import * as site from './site.js';
import * as equipment from './equipment.js';
import * as alarms from './alarms.js';
import * as topology from './topology.js';
import * as cameras from './cameras.js';
import * as storage from './storage.js';

const $ = (id) => document.getElementById(id);
const main = $('main');
let cleanup = null;
let generation = 0;

const API_LINKS = [
  ['/api/site', 'buildings → floors → rooms → equipment'],
  ['/api/equipment', 'equipment list (kind, space, floor, building)'],
  ['/api/alarms', 'active alarms; POST /api/alarms/ID/ack acknowledges (operator)'],
  ['/api/live', 'live point values and alarm changes (Server-Sent Events)'],
  ['/api/topology?relation=power', 'power, video or time edges'],
  ['/api/storage', 'recording storage and retention'],
  ['/api/session', 'who is logged in'],
  ['/api/bacnet/ede.csv', 'the BACnet point list (EDE)'],
  ['/sparql', 'SPARQL 1.1 endpoint'],
  ['/sparql/graph', 'the model as Turtle'],
  ['/haystack/about', 'Haystack 4 API'],
  ['/health', 'liveness and sizes'],
  ['/api', 'the plain API index'],
];

function apiPage(view) {
  clear(view).append(h('h1', {}, 'API'),
    h('p', {}, 'Everything on these pages comes from the gateway\'s own API. Per-item paths: /api/equipment/ID (…/upstream, …/downstream?relation=power|video|time|all, …/impact), /api/points/ID (…/history, …/command, …/override), /api/cameras/ID/recordings and …/clip.mp4?start=&end=.'),
    h('ul', { class: 'api' }, API_LINKS.map(([href, what]) => h('li', {}, link(href, href, { class: 'mono' }), ` — ${what}`))));
}

const ROUTES = [
  [/^\/?$/, (v) => site.render(v), 'site'],
  [/^\/equipment\/(.+)$/, (v, m) => equipment.render(v, decodeURIComponent(m[1])), 'site'],
  [/^\/alarms$/, (v) => alarms.render(v, { askLogin }), 'alarms'],
  [/^\/topology$/, (v, m, q) => topology.render(v, q), 'topology'],
  [/^\/cameras$/, (v) => cameras.renderList(v), 'cameras'],
  [/^\/camera\/(.+)$/, (v, m, q) => cameras.render(v, decodeURIComponent(m[1]), q, { askLogin }), 'cameras'],
  [/^\/storage$/, (v) => storage.render(v), 'storage'],
  [/^\/api$/, (v) => apiPage(v), 'api'],
];

async function route() {
  const mine = ++generation;
  if (cleanup) { cleanup(); cleanup = null; }
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  const params = new URLSearchParams(query || '');
  const hit = ROUTES.map(([re, fn, nav]) => [re.exec(path), fn, nav]).find(([m]) => m);
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', hit && a.dataset.nav === hit[2]));
  if (!hit) {
    clear(main).append(message(`No page ${path}.`, 'error'), link('#/', 'Back to the site'));
    return;
  }
  clear(main).append(message('Loading…'));
  // Each page renders into its own element, shown only if it is still the
  // current route when it is ready: a slow page never paints over a later one.
  const view = h('div');
  try {
    const off = await hit[1](view, hit[0], params);
    if (mine !== generation) { if (typeof off === 'function') off(); return; }
    cleanup = typeof off === 'function' ? off : null;
    main.replaceChildren(view);
  } catch (err) {
    if (mine !== generation) return;
    clear(main).append(message(err.message, 'error'));
    if (err instanceof ApiError && err.status === 401) main.append(h('button', { type: 'button', onclick: askLogin }, 'Log in'));
  }
}

function askLogin() {
  $('login-error').textContent = '';
  $('login-dialog').showModal();
  $('login-user').focus();
}

function showSession() {
  $('who').textContent = session.user ? `${session.user} (${session.role})` : (session.anonymousRead ? 'anonymous (read only)' : 'not logged in');
  $('login-btn').hidden = Boolean(session.user);
  $('logout-btn').hidden = !session.user;
  if (session.site) { $('site-name').textContent = session.site; document.title = `vgw — ${session.site}`; }
}

function setup() {
  $('login-btn').addEventListener('click', askLogin);
  $('login-cancel').addEventListener('click', () => $('login-dialog').close());
  $('logout-btn').addEventListener('click', async () => { await logout(); live.restart(); route(); });
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const submit = $('login-submit');
    submit.disabled = true;
    try {
      await login($('login-user').value, $('login-password').value);
      $('login-password').value = '';
      $('login-dialog').close();
      live.restart();
      route();
    } catch (err) {
      $('login-error').textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  live.onStatus((up) => {
    const el = $('live-status');
    el.textContent = up ? 'live' : 'offline';
    el.classList.toggle('up', up);
  });
  live.onAlarms((all) => {
    const n = [...all.values()].filter((a) => !a.acked).length;
    const badge = $('alarm-count');
    badge.textContent = String(n);
    badge.hidden = n === 0;
  });
  onSession(showSession);
  window.addEventListener('hashchange', route);
}

setup();
refreshSession()
  .catch(() => { /* the page shows the API's error when it loads */ })
  .finally(() => { live.start(); route(); });

// One live stream (Server-Sent Events from /api/live) for the whole page:
// the latest value of every point and the active alarms, kept here, and
// pushed into every element marked data-point="<point id>".

import { fmtValue } from './dom.js';

export const values = new Map();   // point id -> {value, quality, at}
export const alarms = new Map();   // point id -> alarm (as /api/alarms shows it)
const units = new Map();           // point id -> unit, learnt from the pages
const alarmListeners = new Set();
const statusListeners = new Set();
let source = null;
let connected = false;

export function onAlarms(fn) { alarmListeners.add(fn); return () => alarmListeners.delete(fn); }
export function onStatus(fn) { statusListeners.add(fn); fn(connected); return () => statusListeners.delete(fn); }

function setStatus(up) {
  connected = up;
  statusListeners.forEach((fn) => fn(up));
}

// A cell showing one point's live value; updated in place on every change.
export function valueCell(point, unit) {
  units.set(point, unit || '');
  const el = document.createElement('span');
  el.className = 'value';
  el.dataset.point = point;
  paint(el, values.get(point));
  return el;
}

// The quality (ok, fault, overridden, ...) of one point, kept current.
export function qualityCell(point) {
  const el = document.createElement('span');
  el.dataset.qualityOf = point;
  const v = values.get(point);
  el.textContent = v ? v.quality : '…';
  return el;
}

function paint(el, v) {
  const unit = units.get(el.dataset.point);
  el.textContent = v ? fmtValue(v.value, unit) : '…';
  el.dataset.quality = v ? v.quality : 'unknown';
  el.title = v ? `quality: ${v.quality}` : 'waiting for the live stream';
}

function update(list) {
  for (const p of list) {
    values.set(p.id, { value: p.value, quality: p.quality, at: p.at });
    for (const el of document.querySelectorAll(`[data-point="${CSS.escape(p.id)}"]`)) {
      paint(el, values.get(p.id));
      el.classList.remove('flash');
      void el.offsetWidth; // restart the highlight animation
      el.classList.add('flash');
    }
    for (const el of document.querySelectorAll(`[data-quality-of="${CSS.escape(p.id)}"]`)) {
      el.textContent = p.quality;
    }
  }
}

function setAlarms(list, replace) {
  if (replace) alarms.clear();
  for (const a of list) {
    if (a.state === 'normal' && a.acked) alarms.delete(a.id);
    else alarms.set(a.id, a);
  }
  alarmListeners.forEach((fn) => fn(alarms));
}

export function start() {
  if (source) return;
  source = new EventSource('/api/live');
  source.addEventListener('open', () => setStatus(true));
  // EventSource reconnects by itself; the server sends a snapshot again.
  source.addEventListener('error', () => setStatus(false));
  source.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    setStatus(true);
    update(s.points);
    setAlarms(s.alarms, true);
  });
  source.addEventListener('points', (e) => update(JSON.parse(e.data).points));
  source.addEventListener('alarms', (e) => setAlarms(JSON.parse(e.data).alarms, false));
}

// After a login or logout the stream's access may change: reopen it.
export function restart() {
  if (source) source.close();
  source = null;
  start();
}

// For a page that just changed an alarm itself (no need to wait a second).
export function alarmChanged(a) { setAlarms([a], false); }

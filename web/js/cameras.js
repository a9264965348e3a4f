// Cameras: the list, and per camera its recording timeline (runs, gaps,
// alarm bookmarks, evidence locks) with clips played in the browser.

import { api, session, ApiError } from './api.js';
import { h, clear, link, table, message, fmtClock, fmtTime, shortName } from './dom.js';
import { valueCell } from './live.js';

const RANGES = [['15 min', 15], ['1 h', 60], ['6 h', 360], ['24 h', 1440]];
const CLIP_MS = 30000;

export async function renderList(main) {
  const kinds = ['ip_camera', 'analog_camera'];
  const lists = await Promise.all(kinds.map((k) => api(`/api/equipment?kind=${k}&limit=10000`)));
  const cams = lists.flatMap((l) => l.items);
  clear(main).append(h('h1', {}, `Cameras (${cams.length})`),
    table(['Camera', 'Kind', 'Floor', 'Room', ''], cams.map((c) => h('tr', {},
      h('td', {}, link(`#/camera/${encodeURIComponent(c.id)}`, c.name, { title: c.id })),
      h('td', {}, c.kind === 'ip_camera' ? 'IP' : 'analog'),
      h('td', {}, c.floor || '—'),
      h('td', {}, c.space || '—'),
      h('td', {}, link(`#/equipment/${encodeURIComponent(c.id)}`, 'points')))), { id: 'camera-list' }));
}

export async function render(main, id, params, { askLogin }) {
  const e = await api(`/api/equipment/${encodeURIComponent(id)}`);
  clear(main).append(h('p', { class: 'crumbs' }, link('#/cameras', 'Cameras'), ' › ', link(`#/equipment/${encodeURIComponent(id)}`, e.name)),
    h('h1', {}, e.name));
  const health = e.points.filter((p) => /recording|online|last-frame|bitrate|fps|retention/.test(p.id));
  if (health.length) {
    main.append(h('div', { class: 'chips' }, health.map((p) => h('span', { class: 'chip' }, `${shortName(p.name, e.name)}: `, valueCell(p.id, p.unit)))));
  }
  if (!session.user) {
    main.append(h('p', { class: 'msg' }, 'Video needs a login (anonymous read covers the model only). ',
      h('button', { type: 'button', onclick: askLogin }, 'Log in')));
    return;
  }
  const codec = String((e.properties || {}).codec || '');
  if (codec.includes('265') && !document.createElement('video').canPlayType('video/mp4; codecs="hvc1.1.6.L93.B0"')) {
    main.append(message(`This camera records ${codec}, which this browser cannot decode: its clips download instead of playing.`));
  }
  const minutes = Number(params.get('minutes')) || 60;
  const end = Date.now();
  const start = end - minutes * 60000;
  let r;
  try {
    r = await api(`/api/cameras/${encodeURIComponent(id)}/recordings?start=${start}&end=${end}`);
  } catch (err) {
    // Analog cameras reach a recorder through an encoder; the gateway
    // records only cameras it has a stream for.
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    main.append(message('The gateway does not record this camera: its video is on the recorder it streams to.'));
    return;
  }
  const player = h('video', { id: 'player', controls: true, preload: 'metadata', playsinline: true, muted: true });
  const caption = h('p', { class: 'muted', id: 'clip-caption' }, 'Pick a time on the timeline, a bookmark, or play the latest 30 s.');
  const download = h('a', { class: 'button', hidden: true, download: `${id}.mp4` }, 'Download clip');
  const play = (from, to) => {
    from = Math.max(from, start);
    to = Math.min(to, end);
    const src = `/api/cameras/${encodeURIComponent(id)}/clip.mp4?start=${Math.floor(from)}&end=${Math.ceil(to)}`;
    player.src = src;
    download.href = src;
    download.hidden = false;
    caption.textContent = `${fmtTime(from)} – ${fmtClock(to)}`;
    player.play().catch(() => { /* autoplay may be refused; the controls remain */ });
  };
  player.addEventListener('loadedmetadata', () => {
    caption.textContent += ` · ${player.duration.toFixed(1)} s`;
  });
  player.addEventListener('error', () => {
    caption.textContent = `This clip cannot be played here (${player.error ? player.error.message || `media error ${player.error.code}` : 'unknown error'}); try Download clip.`;
  });
  const last = r.recordings[r.recordings.length - 1];
  main.append(h('div', { class: 'tabs' }, RANGES.map(([label, m]) =>
    h('a', { href: `#/camera/${encodeURIComponent(id)}?minutes=${m}`, class: m === minutes ? 'active' : '' }, label))),
  timeline(r, start, end, play),
  h('div', { class: 'buttons' },
    h('button', { type: 'button', id: 'play-latest', class: 'primary', disabled: !last, onclick: () => play(Math.max(last.start_ms, last.end_ms - CLIP_MS), last.end_ms) }, 'Play the latest 30 s'),
    download),
  h('div', { class: 'player' }, player), caption,
  bookmarks(r, play));
}

function timeline(r, start, end, play) {
  const span = end - start;
  const pct = (t) => `${(100 * (t - start)) / span}%`;
  const wide = (a, b) => `${Math.max(0.2, (100 * (b - a)) / span)}%`;
  const ms = (iso) => Date.parse(iso);
  const bar = h('div', { class: 'timeline', id: 'timeline', title: 'click to play 30 s from there' });
  for (const run of r.recordings) {
    bar.append(h('span', { class: 'run', style: { left: pct(Math.max(run.start_ms, start)), width: wide(Math.max(run.start_ms, start), Math.min(run.end_ms, end)) } }));
  }
  for (const l of r.locks) {
    bar.append(h('span', { class: 'lock', title: `evidence lock: ${l.reason}`, style: { left: pct(Math.max(ms(l.start), start)), width: wide(Math.max(ms(l.start), start), Math.min(ms(l.end), end)) } }));
  }
  for (const b of r.bookmarks) {
    bar.append(h('button', {
      type: 'button', class: 'bookmark', title: `alarm: ${b.point} at ${fmtClock(ms(b.start))}`,
      style: { left: pct(Math.max(ms(b.start), start)) },
      onclick: (ev) => { ev.stopPropagation(); play(ms(b.start), ms(b.end)); },
    }));
  }
  bar.addEventListener('click', (ev) => {
    const box = bar.getBoundingClientRect();
    const t = start + ((ev.clientX - box.left) / box.width) * span;
    // A click in a gap plays from the next recording instead of nothing.
    const run = r.recordings.find((x) => t < x.end_ms);
    if (!run) return;
    const from = Math.max(t, run.start_ms);
    play(from, Math.min(from + CLIP_MS, run.end_ms));
  });
  const axis = h('div', { class: 'axis' }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h('span', { style: { left: `${f * 100}%` } }, fmtClock(start + f * span))));
  const recorded = r.recordings.reduce((n, x) => n + Math.min(x.end_ms, end) - Math.max(x.start_ms, start), 0);
  return h('section', { class: 'card' },
    h('h2', {}, 'Recording timeline'),
    h('p', { class: 'muted' }, `${r.recordings.length} recorded runs, ${r.gaps.length} gaps, ${r.bookmarks.length} alarm bookmarks, ${r.locks.length} evidence locks · ${Math.round(recorded / 1000)} s recorded`),
    bar, axis,
    h('p', { class: 'legend' }, h('span', { class: 'key run' }), ' recorded ', h('span', { class: 'key gap' }), ' gap ', h('span', { class: 'key bookmark' }), ' alarm bookmark ', h('span', { class: 'key lock' }), ' evidence lock'));
}

function bookmarks(r, play) {
  if (!r.bookmarks.length) return message('No alarm bookmarks in this range.');
  return h('section', { class: 'card' }, h('h2', {}, 'Alarm bookmarks'),
    table(['Alarm', 'From', 'To', 'Locked until', ''], r.bookmarks.map((b) => h('tr', {},
      h('td', {}, b.point),
      h('td', {}, fmtTime(Date.parse(b.start))),
      h('td', {}, fmtClock(Date.parse(b.end))),
      h('td', {}, b.locked_until ? fmtTime(Date.parse(b.locked_until)) : '—'),
      h('td', {}, h('button', { type: 'button', onclick: () => play(Date.parse(b.start), Date.parse(b.end)) }, 'Play'))))));
}

// Recording storage: the disk, what is kept, the retention each camera
// achieves against its configured days, and anything stopping retention.

import { api } from './api.js';
import { h, clear, link, table, message, fmtBytes, fmtTime } from './dom.js';

export async function render(main) {
  const s = await api('/api/storage');
  clear(main).append(h('h1', {}, 'Storage and retention'));
  if (!s.recording) {
    main.append(message('Recording is not running on this gateway (no data directory, or recording disabled).'));
    return;
  }
  const cards = h('div', { class: 'grid' });
  if (s.disk) {
    const used = s.disk.size - s.disk.free;
    const pct = (x) => `${((100 * x) / s.disk.size).toFixed(1)}%`;
    cards.append(h('section', { class: 'card', id: 'disk' }, h('h2', {}, s.disk.budget ? 'Disk budget' : 'Recording disk'),
      h('div', { class: 'bar', title: `${pct(used)} used` },
        h('span', { class: 'used', style: { width: pct(used) } }),
        h('span', { class: 'floor', style: { width: pct(s.disk.keep_free) }, title: 'kept free by retention' })),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Size'), h('dd', {}, fmtBytes(s.disk.size)),
        h('dt', {}, 'Free'), h('dd', {}, `${fmtBytes(s.disk.free)} (${pct(s.disk.free)})`),
        h('dt', {}, 'Kept free'), h('dd', {}, fmtBytes(s.disk.keep_free)))));
  }
  const health = s.health;
  const problems = [
    health.write_error && 'writing to the disk is failing right now',
    health.retention_blocked && 'retention is blocked: only locked or open recordings are left to delete',
  ].filter(Boolean);
  cards.append(h('section', { class: 'card' }, h('h2', {}, 'Recordings'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Stored'), h('dd', {}, `${fmtBytes(s.total.bytes)} in ${s.total.segments} segments`),
      h('dt', {}, 'Oldest'), h('dd', {}, fmtTime(s.total.oldest)),
      h('dt', {}, 'Alarm bookmarks'), h('dd', {}, String(s.locks.bookmarks)),
      h('dt', {}, 'Evidence locks'), h('dd', {}, String(s.locks.evidence)),
      h('dt', {}, 'Write errors'), h('dd', {}, String(health.write_errors)),
      h('dt', {}, 'Fragments dropped'), h('dd', {}, String(health.fragments_dropped))),
    problems.map((p) => message(p, 'error'))));
  cards.append(h('section', { class: 'card' }, h('h2', {}, 'Retention settings'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Default'), h('dd', {}, `${s.settings.retention_days} days`),
      h('dt', {}, 'Max per camera'), h('dd', {}, s.settings.max_bytes_per_camera ? fmtBytes(s.settings.max_bytes_per_camera) : 'no limit'),
      h('dt', {}, 'Keep free'), h('dd', {}, `${s.settings.min_free_percent} % of the disk`),
      h('dt', {}, 'Alarm clips'), h('dd', {}, `${s.settings.pre_alarm_s} s before to ${s.settings.post_alarm_s} s after, locked ${s.settings.lock_days} days`))));
  main.append(cards);

  const rows = s.cameras.map((c) => {
    const achieved = c.retention_days ? Math.min(100, (100 * c.days) / c.retention_days) : 0;
    const state = c.problem ? c.problem : c.recording ? 'recording' : c.connected ? 'connected' : 'not recording';
    return h('tr', {},
      h('td', {}, link(`#/camera/${encodeURIComponent(c.id)}`, c.name || c.id)),
      h('td', {}, c.mode || '—'),
      h('td', { class: c.recording ? 'ok' : 'bad' }, state),
      h('td', { class: 'num' }, fmtBytes(c.bytes)),
      h('td', {}, h('div', { class: 'bar small', title: `${c.days.toFixed(3)} of ${c.retention_days} days` }, h('span', { class: 'used', style: { width: `${achieved.toFixed(1)}%` } })),
        h('span', { class: 'muted' }, `${formatDays(c.days)} of ${c.retention_days} d`)),
      h('td', {}, c.max_bytes ? fmtBytes(c.max_bytes) : '—'),
      h('td', { class: 'num' }, String(c.locks)));
  });
  main.append(h('section', { class: 'card' }, h('h2', {}, `Cameras (${s.cameras.length})`),
    table(['Camera', 'Mode', 'State', 'Stored', 'Retention achieved', 'Max size', 'Locks'], rows, { id: 'storage-cameras' })));
}

function formatDays(d) {
  if (d >= 1) return `${d.toFixed(1)} d`;
  const h = d * 24;
  return h >= 1 ? `${h.toFixed(1)} h` : `${Math.round(h * 60)} min`;
}

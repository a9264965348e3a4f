// One piece of equipment: where it is, its properties, its points with
// live values, its relations, and what depends on it.

import { api } from './api.js';
import { h, clear, equipLink, link, table, message, shortName } from './dom.js';
import { valueCell, qualityCell } from './live.js';
import { kindLabel } from './site.js';

const RELATION_LABELS = {
  fed_by: 'Powered by', feeds: 'Feeds (power)', streams_to: 'Streams video to',
  video_sources: 'Video sources', time_source: 'Time source', time_clients: 'Sets the clock of',
  managed_by: 'Managed by', manages: 'Manages', parts: 'Parts', part_of: 'Part of',
};

export async function render(main, id) {
  const e = await api(`/api/equipment/${encodeURIComponent(id)}`);
  clear(main);
  const crumbs = h('p', { class: 'crumbs' }, link('#/', 'Site'));
  for (const l of e.location) crumbs.append(' › ', h('span', {}, l.name));
  main.append(crumbs, h('h1', {}, e.name, ' ', h('span', { class: 'kind' }, kindLabel(e.kind))));

  const isCamera = e.kind === 'ip_camera' || e.kind === 'analog_camera';
  if (isCamera) main.append(h('p', {}, link(`#/camera/${encodeURIComponent(e.id)}`, 'Recording timeline and clips →', { class: 'button' })));

  const facts = [['Id', e.id], ['Brick class', e.class], ['Haystack id', e.haystack_id]];
  for (const [k, v] of Object.entries(e.properties || {})) facts.push([k, typeof v === 'object' ? JSON.stringify(v) : v]);
  if (e.device) for (const [k, v] of Object.entries(e.device)) if (typeof v !== 'object') facts.push([`device ${k}`, v]);

  const grid = h('div', { class: 'grid' });
  grid.append(h('section', { class: 'card' }, h('h2', {}, 'Properties'),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]))));
  grid.append(relations(e));
  main.append(grid);

  main.append(h('section', { class: 'card' }, h('h2', {}, `Points (${e.points.length})`),
    table(['Point', 'Value', 'Quality', 'BACnet', 'Class'], e.points.map((p) => h('tr', { dataset: { pointRow: p.id } },
      h('td', { title: p.id }, shortName(p.name, e.name), p.writable ? h('span', { class: 'tag' }, 'writable') : null),
      h('td', {}, valueCell(p.id, p.unit)),
      h('td', { class: 'quality' }, qualityCell(p.id)),
      h('td', { class: 'mono' }, p.bacnet.object),
      h('td', { class: 'muted' }, p.class))), { class: 'points' })));

  main.append(dependencies(e));
}

function relations(e) {
  const sec = h('section', { class: 'card' }, h('h2', {}, 'Relations'));
  const keys = Object.keys(e.relations || {});
  if (!keys.length) sec.append(message('No relations.'));
  const dl = h('dl', { class: 'facts' });
  for (const k of keys) {
    dl.append(h('dt', {}, RELATION_LABELS[k] || k),
      h('dd', {}, e.relations[k].map((o, i) => [i ? ', ' : '', o.name ? equipLink(o) : o.id])));
  }
  sec.append(dl);
  return sec;
}

// Upstream, downstream and failure impact, fetched when asked for: on a
// UPS feeding 60 cameras they are long lists.
function dependencies(e) {
  const out = h('div', { class: 'deps' });
  const id = encodeURIComponent(e.id);
  const show = async (title, path, pick) => {
    clear(out).append(message('Loading…'));
    try {
      const r = await api(path);
      const items = pick(r);
      clear(out).append(h('h3', {}, `${title} (${items.length})`),
        items.length ? h('ul', { class: 'columns' }, items.map((x) => h('li', {}, equipLink(x), x.why ? h('span', { class: 'muted' }, ` ${x.why}`) : null))) : message('Nothing.'));
    } catch (err) {
      clear(out).append(message(err.message, 'error'));
    }
  };
  const impact = (r) => [
    ...r.unpowered.map((x) => ({ ...x, why: 'loses power' })),
    ...r.not_recorded.map((x) => ({ ...x, why: 'not recorded' })),
    ...r.time_unsynced.map((x) => ({ ...x, why: 'loses time sync' })),
  ];
  return h('section', { class: 'card' }, h('h2', {}, 'Dependencies'),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', onclick: () => show('Depends on', `/api/equipment/${id}/upstream?relation=all`, (r) => r.equipment) }, 'Depends on'),
      h('button', { type: 'button', onclick: () => show('Depends on it', `/api/equipment/${id}/downstream?relation=all`, (r) => r.equipment) }, 'Depends on it'),
      h('button', { type: 'button', onclick: () => show('If it fails', `/api/equipment/${id}/impact`, impact) }, 'If it fails…')),
    out);
}

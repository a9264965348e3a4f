// The site tree: building → floor → room → equipment.

import { api } from './api.js';
import { h, clear, equipLink, message } from './dom.js';
import { alarms, onAlarms } from './live.js';

const KIND_LABELS = {
  nvr: 'NVR', hybrid_recorder: 'Hybrid recorder', dvr: 'DVR', ip_camera: 'IP camera',
  analog_camera: 'Analog camera', encoder: 'Encoder', ups: 'UPS', pdu: 'PDU',
  poe_switch: 'PoE switch', ntp_server: 'NTP server', vms_server: 'VMS server',
  workstation: 'Workstation', gateway: 'Gateway',
};
export const kindLabel = (k) => KIND_LABELS[k] || k;

export async function render(main) {
  const [site, list] = await Promise.all([api('/api/site'), api('/api/equipment?limit=10000')]);
  const byId = new Map(list.items.map((e) => [e.id, e]));
  clear(main).append(
    h('h1', {}, site.name),
    h('p', { class: 'muted' }, `${site.counts.equipment} equipment · ${site.counts.points} points · time zone ${site.timezone}`),
  );
  const tree = h('ul', { class: 'tree', id: 'site-tree' });
  for (const b of site.buildings) {
    const floors = b.floors.slice().sort((x, y) => (y.level ?? 0) - (x.level ?? 0));
    tree.append(node('building', b, true, [
      ...floors.map((f) => node('floor', f, false, f.spaces.map((s) => space(s, byId)))),
      ...b.spaces.map((s) => space(s, byId)),
    ]));
  }
  if (!site.buildings.length) tree.append(h('li', {}, message('This site has no buildings.')));
  main.append(tree);
  const mark = () => markAlarms(tree);
  mark();
  return onAlarms(mark);
}

function count(children) {
  return children.reduce((n, c) => n + Number(c.dataset.count || 0), 0);
}

function node(type, loc, open, children) {
  const n = count(children);
  const li = h('li', { class: type, dataset: { count: n, loc: loc.id } },
    h('details', { open },
      h('summary', {}, h('span', { class: 'loc-name' }, loc.name), ' ', h('span', { class: 'muted' }, `${type} · ${n} equipment`)),
      h('ul', {}, children)));
  return li;
}

function space(s, byId) {
  const items = s.equipment.map((id) => byId.get(id) || { id, name: id });
  const li = node('room', s, false, []);
  li.dataset.count = items.length;
  li.querySelector('.muted').textContent = `${s.kind} · ${items.length} equipment`;
  li.querySelector('ul').append(...items.map((e) => h('li', { class: 'equip', dataset: { equip: e.id } },
    equipLink(e), ' ', h('span', { class: 'kind' }, kindLabel(e.kind)))));
  return li;
}

// A red mark on every equipment with an active alarm, and on its room,
// floor and building, so a closed tree still shows where to look.
function markAlarms(tree) {
  // Faults (no answer, no driver) are not marked: a site without drivers
  // would be red everywhere.
  const hot = new Set([...alarms.values()]
    .filter((a) => !a.acked || !['normal', 'fault'].includes(a.state)).map((a) => a.equipment));
  tree.querySelectorAll('.alarm-mark').forEach((el) => el.remove());
  for (const li of tree.querySelectorAll('li.equip')) {
    if (!hot.has(li.dataset.equip)) continue;
    li.append(h('span', { class: 'alarm-mark', title: 'active alarm' }, '●'));
    for (let p = li.parentElement.closest('li'); p; p = p.parentElement.closest('li')) {
      const summary = p.querySelector(':scope > details > summary');
      if (summary && !summary.querySelector('.alarm-mark')) summary.append(h('span', { class: 'alarm-mark', title: 'active alarm inside' }, '●'));
    }
  }
}

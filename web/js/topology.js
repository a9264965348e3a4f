// Power, video and time relations as trees: a UPS with what it feeds, a
// recorder with the cameras streaming to it, an NTP server with the
// clocks it sets.

import { api } from './api.js';
import { h, clear, equipLink, message } from './dom.js';
import { kindLabel } from './site.js';

const VIEWS = {
  power: { title: 'Power', note: 'What feeds what: UPS → PDU / PoE switch → devices.' },
  video: { title: 'Video', note: 'Where video goes: each recorder or VMS with the sources streaming to it.' },
  time: { title: 'Time', note: 'Which clock sets which: time servers and the devices synchronising with them.' },
};

export async function render(main, params) {
  const relation = VIEWS[params.get('relation')] ? params.get('relation') : 'power';
  const r = await api(`/api/topology?relation=${relation}`);
  clear(main).append(h('h1', {}, 'Topology'),
    h('div', { class: 'tabs', role: 'tablist' }, Object.entries(VIEWS).map(([k, v]) =>
      h('a', { href: `#/topology?relation=${k}`, role: 'tab', 'aria-selected': String(k === relation), class: k === relation ? 'active' : '' }, v.title))),
    h('p', { class: 'muted' }, VIEWS[relation].note));
  if (!r.edges.length) {
    main.append(message(`No ${relation} relations in this site.`));
    return;
  }
  // Parent → children, with the parent being the source of power or time,
  // or the destination of video.
  const byId = new Map(r.nodes.map((n) => [n.id, n]));
  const children = new Map();
  const hasParent = new Set();
  for (const [from, to] of r.edges) {
    const [parent, child] = relation === 'video' ? [to, from] : [from, to];
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(child);
    hasParent.add(child);
  }
  const roots = r.nodes.filter((n) => !hasParent.has(n.id) && children.has(n.id));
  const tree = h('ul', { class: 'tree topo', id: 'topology-tree' }, roots.map((n) => branch(n.id, byId, children, new Set(), 0)));
  main.append(tree);
}

function branch(id, byId, children, path, depth) {
  const n = byId.get(id) || { id, name: id };
  const label = [equipLink(n), ' ', h('span', { class: 'kind' }, kindLabel(n.kind))];
  const kids = children.get(id) || [];
  if (!kids.length || path.has(id)) return h('li', {}, label);
  const next = new Set(path).add(id);
  return h('li', {}, h('details', { open: depth < 2 },
    h('summary', {}, label, h('span', { class: 'muted' }, ` · ${kids.length}`)),
    h('ul', {}, kids.map((k) => branch(k, byId, children, next, depth + 1)))));
}

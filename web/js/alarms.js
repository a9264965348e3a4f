// Active alarms (not normal, or not yet acknowledged), live, with
// acknowledgement for operators.

import { api, post, isOperator, session } from './api.js';
import { h, clear, link, table, message, fmtTime } from './dom.js';
import { alarms, onAlarms, alarmChanged } from './live.js';

export async function render(main, { askLogin }) {
  // The stream keeps the list current; the first paint does not wait for it.
  const first = await api('/api/alarms');
  for (const a of first.alarms) if (!alarms.has(a.id)) alarmChanged(a);
  const note = h('div', { id: 'alarm-note' });
  const body = h('div');
  clear(main).append(h('h1', {}, 'Active alarms'), note, body);
  const paint = () => {
    const list = [...alarms.values()].sort((a, b) => Number(a.acked) - Number(b.acked) || b.since - a.since);
    clear(note);
    if (!isOperator()) {
      note.append(h('p', { class: 'msg' }, session.user ? `${session.user} is a ${session.role}: acknowledging needs an operator. ` : 'Acknowledging needs an operator login. ',
        h('button', { type: 'button', onclick: askLogin }, 'Log in')));
    }
    clear(body).append(list.length ? table(['Alarm', 'Equipment', 'State', 'Since', 'Acknowledged', ''],
      list.map((a) => row(a, note))) : message('No active alarms.'));
  };
  paint();
  return onAlarms(paint);
}

function row(a, note) {
  const ack = h('button', {
    type: 'button', class: 'ack', disabled: a.acked || !isOperator(),
    onclick: async () => {
      ack.disabled = true;
      try {
        alarmChanged(await post(`/api/alarms/${encodeURIComponent(a.id)}/ack`));
      } catch (err) {
        ack.disabled = false;
        note.append(message(`Could not acknowledge ${a.name}: ${err.message}`, 'error'));
      }
    },
  }, 'Acknowledge');
  return h('tr', { class: a.acked ? 'acked' : 'unacked', dataset: { alarm: a.id } },
    h('td', {}, a.name),
    h('td', {}, link(`#/equipment/${encodeURIComponent(a.equipment)}`, a.equipment)),
    h('td', {}, h('span', { class: `state ${a.state}` }, a.state)),
    h('td', {}, fmtTime(a.since)),
    h('td', { class: 'ack-state' }, a.acked ? (a.acked_by ? `yes, by ${a.acked_by}` : 'yes') : 'no'),
    h('td', {}, a.acked ? '' : ack));
}

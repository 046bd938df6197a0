// Deliveries (admin, finance): outbound postbacks to publishers with every attempt (CONTRACT §6),
// filtered by state, publisher and conversion. Admins may replay one (one more try, same webhook-id)
// and re-enable a publisher endpoint that a 410 disabled.

import { api, showError } from './api.js';
import { $, clear, h, table, toast } from './dom.js';
import { listOf, plain, shortId, timeEl, utc } from './format.js';

const PAGE = 50;
const dl = { rows: [], nextCursor: null, params: null, canWrite: false };

export function init() {
  $('dlv-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  $('dlv-more').addEventListener('click', () => load({ more: true }));
}

export function reset() {
  Object.assign(dl, { rows: [], nextCursor: null, params: null, canWrite: false });
  $('dlv-result').replaceChildren();
  $('dlv-error').replaceChildren();
  $('dlv-more').hidden = true;
}

/** `canWrite`: the token is an admin's, so replay and re-enable are offered (finance only reads). */
export function setAccess({ canWrite }) {
  dl.canWrite = canWrite;
}

function filterParams() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const fields = { state: 'dlv-state', publisherId: 'dlv-publisher', conversionId: 'dlv-conversion' };
  for (const [name, id] of Object.entries(fields)) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

export async function load({ more = false } = {}) {
  const errorBox = $('dlv-error');
  errorBox.replaceChildren();
  const params = more && dl.params ? new URLSearchParams(dl.params) : filterParams();
  dl.params = new URLSearchParams(params);
  if (more && dl.nextCursor) params.set('cursor', dl.nextCursor);
  let body;
  try {
    body = await api('GET', `/v1/deliveries?${params}`);
  } catch (err) {
    showError(errorBox, 'Could not list deliveries.', err);
    return;
  }
  dl.rows = more ? [...dl.rows, ...listOf(body)] : listOf(body);
  dl.nextCursor = body.nextCursor ?? null;
  render();
}

function render() {
  clear(
    $('dlv-result'),
    h('p', { class: 'muted', role: 'status' }, `${dl.rows.length} deliver${dl.rows.length === 1 ? 'y' : 'ies'} shown${dl.nextCursor ? '; more on the server' : ''}.`),
    table(
      'Deliveries',
      ['Created (UTC)', 'Delivery', 'Publisher', 'State', 'Attempts', 'Next / done (UTC)', 'Actions'],
      dl.rows.map((d) => [
        timeEl(d.createdAt),
        [h('span', { class: 'mono', title: d.id }, shortId(d.id)), h('div', { class: 'cell-sub' }, 'conversion ', h('span', { class: 'mono', title: d.conversionId }, shortId(d.conversionId)), ` · ${plain(d.status)}`)],
        [d.publisherName ? h('span', { title: d.publisherId }, d.publisherName) : h('span', { class: 'mono' }, plain(d.publisherId)), d.publisherDisabled ? h('div', {}, h('span', { class: 'badge badge-failed' }, '✕ endpoint disabled')) : null],
        [h('span', { class: `badge badge-${d.state}` }, plain(d.state)), d.inFlight ? h('div', { class: 'cell-sub' }, '… attempt in flight') : null],
        attemptsCell(d),
        d.deliveredAt ? ['delivered ', timeEl(d.deliveredAt)] : d.nextAttemptAt ? ['next ', timeEl(d.nextAttemptAt)] : ['deadline ', timeEl(d.deadlineAt)],
        actions(d),
      ]),
    ),
  );
  $('dlv-more').hidden = !dl.nextCursor;
}

/** The count, the last answer, and every attempt behind a disclosure (no script needed to open it). */
function attemptsCell(d) {
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const answer = (a) => (a.statusCode ? `HTTP ${a.statusCode}` : (a.error ?? 'no answer'));
  if (!attempts.length) return h('span', { class: 'muted' }, 'none yet');
  const last = attempts[attempts.length - 1];
  return h(
    'details',
    {},
    h('summary', {}, `${attempts.length} · last ${answer(last)}`),
    table(
      `Attempts of delivery ${d.id}`,
      ['When (UTC)', 'Answer', 'Latency', 'Response', 'Replay'],
      attempts.map((a) => [timeEl(a.at, utc(a.at, { seconds: true })), answer(a), a.latencyMs != null ? `${a.latencyMs} ms` : '—', h('span', { class: 'mono wrap' }, plain(a.response ?? undefined)), a.replay ? 'yes' : 'no']),
      { numeric: [2] },
    ),
  );
}

function actions(d) {
  if (!dl.canWrite) return h('span', { class: 'muted' }, 'admin only');
  return h(
    'div',
    { class: 'row-actions' },
    h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Replay delivery ${d.id}`, onclick: (e) => replay(d, e.currentTarget) }, 'Replay'),
    d.publisherDisabled
      ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Re-enable the endpoint of ${d.publisherName ?? d.publisherId}`, onclick: (e) => enable(d, e.currentTarget) }, 'Re-enable endpoint')
      : null,
  );
}

/** POST /v1/deliveries/:id/replay: one more try now, with the same webhook-id; the row shows the answer. */
async function replay(d, button) {
  button.disabled = true;
  try {
    const updated = await api('POST', `/v1/deliveries/${encodeURIComponent(d.id)}/replay`, undefined);
    dl.rows = dl.rows.map((r) => (r.id === d.id ? updated : r));
    const last = Array.isArray(updated.attempts) ? updated.attempts[updated.attempts.length - 1] : undefined;
    toast(`Replayed ${d.id}: ${last ? (last.statusCode ? `HTTP ${last.statusCode}` : (last.error ?? 'no answer')) : 'queued'}.`, updated.state === 'delivered' ? 'ok' : 'warn');
    render();
  } catch (err) {
    showError($('dlv-error'), `Could not replay ${d.id}.`, err);
    if (button.isConnected) button.disabled = false;
  }
}

/** POST /v1/publishers/:id/enable: the endpoint takes postbacks again and its waiting deliveries resume. */
async function enable(d, button) {
  button.disabled = true;
  try {
    const publisher = await api('POST', `/v1/publishers/${encodeURIComponent(d.publisherId)}/enable`, undefined);
    toast(`Re-enabled ${publisher.name ?? d.publisherId}; ${publisher.resumedDeliveries ?? 0} waiting deliveries resumed.`);
    await load();
  } catch (err) {
    showError($('dlv-error'), `Could not re-enable ${d.publisherId}.`, err);
    if (button.isConnected) button.disabled = false;
  }
}

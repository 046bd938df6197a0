// Conversions (analysts, finance): every conversion, accepted ones too, searched by txid or click ID and
// filtered by decision, offer, publisher and reason; paged with the API's cursor; one opened read-only
// below; the same selection downloaded as CSV.

import { api, showError } from './api.js';
import { decisionBadge, reasonChips, scoreBadge } from './badges.js';
import { renderDetail } from './conversion-detail.js';
import { $, clear, h, saveDownload, table, toast } from './dom.js';
import { listOf, money, named, plain, timeEl } from './format.js';

const PAGE = 50;
/** Reasons that are not fraud rules: the caps' own (src/postback/caps.ts). */
const NON_RULE_REASONS = ['over_cap'];

const conv = { rows: [], nextCursor: null, params: null, names: { offers: new Map(), publishers: new Map() }, listed: false, openId: null, canListCatalog: false };

export function init() {
  $('conv-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  $('conv-more').addEventListener('click', () => load({ more: true }));
  $('conv-csv').addEventListener('click', downloadCsv);
}

export function reset() {
  Object.assign(conv, { rows: [], nextCursor: null, params: null, names: { offers: new Map(), publishers: new Map() }, listed: false, openId: null, canListCatalog: false });
  $('conv-result').replaceChildren();
  $('conv-error').replaceChildren();
  $('conv-detail').replaceChildren();
  $('conv-detail').hidden = true;
  $('conv-more').hidden = true;
}

/** `canListCatalog`: an admin token, which may list offers and publishers for the suggestions. */
export function setAccess({ canListCatalog }) {
  conv.canListCatalog = canListCatalog;
}

/**
 * The reason codes come from GET /v1/fraud/rules (any role); offer and publisher names from the admin
 * lists when this token may read them, otherwise from the conversions shown so far (which carry names).
 */
async function loadChoices() {
  if (conv.listed) return;
  conv.listed = true;
  const catalog = (path) => (conv.canListCatalog ? api('GET', path) : Promise.reject(new Error('admin only')));
  const [rules, offers, publishers] = await Promise.allSettled([api('GET', '/v1/fraud/rules'), catalog('/v1/offers'), catalog('/v1/publishers')]);
  const codes = rules.status === 'fulfilled' ? listOf(rules.value, 'rules').map((r) => r.code).filter((c) => typeof c === 'string') : [];
  const reason = $('conv-reason');
  clear(reason, h('option', { value: '' }, 'Any reason'), [...codes, ...NON_RULE_REASONS].map((c) => h('option', { value: c }, c)));
  if (offers.status === 'fulfilled') for (const o of listOf(offers.value)) conv.names.offers.set(o.id, o.name);
  if (publishers.status === 'fulfilled') for (const p of listOf(publishers.value)) conv.names.publishers.set(p.id, p.name);
  fillNameLists();
}

/** Typed filters take IDs (what the API filters by); the suggestions show each ID with its name. */
function fillNameLists() {
  const options = (map) => [...map].sort((a, b) => String(a[1]).localeCompare(String(b[1]))).map(([id, name]) => h('option', { value: id }, name ?? id));
  clear($('conv-offers'), options(conv.names.offers));
  clear($('conv-publishers'), options(conv.names.publishers));
}

/** A UTC day from a date input as an ISO time; `next` gives the following midnight (the day included). */
function dayStart(value, next = false) {
  const d = new Date(`${value}T00:00:00Z`);
  if (next) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}

/** The form as API filters; an empty field is no filter. */
function filterParams() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if ($('conv-from').value) params.set('from', dayStart($('conv-from').value));
  if ($('conv-to').value) params.set('to', dayStart($('conv-to').value, true));
  const fields = { txid: 'conv-txid', clickid: 'conv-clickid', decision: 'conv-decision', offerId: 'conv-offer', publisherId: 'conv-publisher', reason: 'conv-reason' };
  for (const [name, id] of Object.entries(fields)) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

export async function load({ more = false } = {}) {
  const errorBox = $('conv-error');
  errorBox.replaceChildren();
  await loadChoices();
  // "Load more" continues the list that is shown, whatever the form says now.
  const params = more && conv.params ? new URLSearchParams(conv.params) : filterParams();
  conv.params = new URLSearchParams(params);
  if (more && conv.nextCursor) params.set('cursor', conv.nextCursor);
  const button = $('conv-search');
  button.disabled = true;
  let body;
  try {
    body = await api('GET', `/v1/conversions?${params}`);
  } catch (err) {
    showError(errorBox, 'Could not list conversions.', err);
    return;
  } finally {
    button.disabled = false;
  }
  const items = listOf(body);
  conv.rows = more ? [...conv.rows, ...items] : items;
  conv.nextCursor = body.nextCursor ?? null;
  for (const c of items) {
    if (c.offerName && !conv.names.offers.has(c.offerId)) conv.names.offers.set(c.offerId, c.offerName);
    if (c.publisherName && !conv.names.publishers.has(c.publisherId)) conv.names.publishers.set(c.publisherId, c.publisherName);
  }
  fillNameLists();
  render();
}

function render() {
  const count = `${conv.rows.length} conversion${conv.rows.length === 1 ? '' : 's'} shown${conv.nextCursor ? '; more on the server' : ''}.`;
  clear(
    $('conv-result'),
    h('p', { class: 'muted', role: 'status' }, count),
    table(
      'Conversions',
      ['Received (UTC)', 'Conversion', 'Offer', 'Publisher', 'Decision', 'Score', 'Reasons', 'Status', 'Payout'],
      conv.rows.map((c) => [
        timeEl(c.createdAt),
        [
          h('button', { type: 'button', class: 'link mono', 'aria-label': `Open conversion ${c.id}`, onclick: () => open(c.id) }, c.id),
          h('div', { class: 'cell-sub' }, 'txid ', h('span', { class: 'mono' }, plain(c.txid))),
        ],
        named(c.offerName, c.offerId),
        named(c.publisherName, c.publisherId),
        decisionBadge(c.decision),
        scoreBadge(c.score),
        reasonChips(Array.isArray(c.reasons) ? c.reasons : [], 3),
        plain(c.status),
        money(c.payout, c.currency),
      ]),
      { numeric: [5, 8] },
    ),
  );
  $('conv-more').hidden = !conv.nextCursor;
}

/** One conversion with its evidence, click, history, deliveries and reviews; decisions stay in the review queue. */
async function open(id) {
  conv.openId = id;
  const pane = $('conv-detail');
  pane.hidden = false;
  clear(pane, h('p', { class: 'empty' }, `Loading ${id}…`));
  try {
    const c = await api('GET', `/v1/conversions/${encodeURIComponent(id)}`);
    if (conv.openId !== id) return;
    renderDetail(pane, c, { onDecide: null });
    pane.querySelector('h3')?.setAttribute('tabindex', '-1');
    pane.querySelector('h3')?.focus();
  } catch (err) {
    if (conv.openId === id) showError(pane, `Could not load conversion ${id}.`, err);
  }
}

/** Every conversion the form selects, as CSV (the API pages through them itself). */
async function downloadCsv() {
  const params = filterParams();
  params.delete('limit');
  params.set('format', 'csv');
  const button = $('conv-csv');
  button.disabled = true;
  try {
    const res = await api('GET', `/v1/conversions?${params}`, undefined, { accept: 'text/csv', raw: true });
    await saveDownload(res, `conversions_${new Date().toISOString().slice(0, 10)}.csv`);
    toast('CSV downloaded.');
  } catch (err) {
    showError($('conv-error'), 'Could not download the CSV.', err);
  } finally {
    button.disabled = false;
  }
}

// Refused postbacks (admin, analyst; CONTRACT §10): the attempt log, newest first, filtered by advertiser
// and error code, so integration support can answer "why was my postback refused" without a database shell.

import { api, showError } from './api.js';
import { $, clear, h, table } from './dom.js';
import { listOf, plain, timeEl } from './format.js';

const refused = { nextCursor: null, rows: [], names: new Map(), params: null, listed: false };

const CODES = [
  'invalid_request', 'bad_signature', 'stale_signature', 'bad_token', 'ip_not_allowed', 'unknown_advertiser', 'invalid_click',
  'unknown_event', 'conflict', 'rate_limited', 'payload_too_large', 'unsupported_media_type',
];

export function init() {
  const code = $('refused-code');
  code.append(h('option', { value: '' }, 'Any code'), ...CODES.map((c) => h('option', { value: c }, c)));
  $('refused-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  $('refused-more').addEventListener('click', () => load({ more: true }));
}

export function reset() {
  Object.assign(refused, { nextCursor: null, rows: [], names: new Map(), params: null, listed: false });
  $('refused-advertiser').hidden = false;
  $('refused-advertiser-id-field').hidden = true;
  $('refused-result').replaceChildren();
  $('refused-error').replaceChildren();
  $('refused-more').hidden = true;
}

/**
 * Advertiser names for the filter and the table. Only admin tokens may list advertisers: for an analyst
 * the select gives way to a typed advertiser ID, so the filter still works.
 */
async function loadAdvertisers() {
  if (refused.listed) return;
  refused.listed = true;
  try {
    const body = await api('GET', '/v1/advertisers');
    for (const a of listOf(body)) refused.names.set(a.id, a.name);
  } catch {
    $('refused-advertiser').closest('.field').hidden = true;
    $('refused-advertiser-id-field').hidden = false;
    return;
  }
  const select = $('refused-advertiser');
  const chosen = select.value;
  clear(select, h('option', { value: '' }, 'All advertisers'), [...refused.names].map(([id, name]) => h('option', { value: id }, `${name} (${id})`)));
  select.value = chosen;
}

function filterParams() {
  const params = new URLSearchParams({ limit: '50' });
  const advertiserId = $('refused-advertiser-id-field').hidden ? $('refused-advertiser').value : $('refused-advertiser-id').value.trim();
  const code = $('refused-code').value;
  if (advertiserId) params.set('advertiserId', advertiserId);
  if (code) params.set('code', code);
  return params;
}

export async function load({ more = false } = {}) {
  const errorBox = $('refused-error');
  errorBox.replaceChildren();
  await loadAdvertisers();
  // "Load more" continues the list that is shown, whatever the form says now.
  const params = more && refused.params ? new URLSearchParams(refused.params) : filterParams();
  refused.params = new URLSearchParams(params);
  if (more && refused.nextCursor) params.set('cursor', refused.nextCursor);
  let body;
  try {
    body = await api('GET', `/v1/postback-attempts?${params}`);
  } catch (err) {
    showError(errorBox, 'Could not load refused postbacks.', err);
    return;
  }
  refused.rows = more ? [...refused.rows, ...listOf(body)] : listOf(body);
  refused.nextCursor = body.nextCursor ?? null;
  // The API names the advertiser (analysts cannot list them); the admin list is the fallback.
  const name = (id, given) => {
    if (!id) return '—';
    const known = given ?? refused.names.get(id);
    return known ? `${known} (${id})` : id;
  };
  clear(
    $('refused-result'),
    table(
      'Refused postbacks',
      ['Received (UTC)', 'Advertiser', 'Source IP', 'Click ID', 'txid', 'Status', 'Code', 'Reason', 'Message'],
      refused.rows.map((r) => [timeEl(r.receivedAt), name(r.advertiserId, r.advertiserName), plain(r.sourceIp), plain(r.clickid), plain(r.txid), String(r.status), r.code, plain(r.reason), plain(r.message)]),
      { numeric: [5] },
    ),
  );
  $('refused-more').hidden = !refused.nextCursor;
}

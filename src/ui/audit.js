// Audit of changes (admin; CONTRACT §10): who changed what and when, with each change shown as the fields
// that differ between before and after. Secrets arrive from the API already redacted.

import { api, showError } from './api.js';
import { $, clear, h } from './dom.js';
import { listOf, plain, timeEl } from './format.js';

const audit = { nextCursor: null, rows: [], params: null };

const ENTITIES = ['advertiser', 'advertiser_secret', 'publisher', 'offer', 'token', 'fx_rates'];

export function init() {
  $('audit-entity').append(h('option', { value: '' }, 'Any entity'), ...ENTITIES.map((e) => h('option', { value: e }, e)));
  $('audit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  $('audit-more').addEventListener('click', () => load({ more: true }));
}

export function reset() {
  Object.assign(audit, { nextCursor: null, rows: [], params: null });
  $('audit-result').replaceChildren();
  $('audit-error').replaceChildren();
  $('audit-more').hidden = true;
}

/** The top-level fields whose values differ, as [field, before, after]. */
export function changedFields(before, after) {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  const out = [];
  for (const key of keys) {
    const a = before?.[key];
    const b = after?.[key];
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push([key, a, b]);
  }
  return out;
}

function diffView(entry) {
  const changes = changedFields(entry.before, entry.after);
  if (!changes.length) return h('span', { class: 'muted' }, 'no field changed');
  return h(
    'dl',
    { class: 'diff' },
    changes.map(([key, a, b]) => [h('dt', {}, key), h('dd', {}, h('del', {}, plain(a)), ' → ', h('ins', {}, plain(b)))]),
  );
}

function filterParams() {
  const params = new URLSearchParams({ limit: '50' });
  const entity = $('audit-entity').value;
  const entityId = $('audit-entity-id').value.trim();
  if (entity) params.set('entity', entity);
  if (entityId) params.set('entityId', entityId);
  for (const side of ['from', 'to']) {
    const day = $(`audit-${side}`).value;
    if (!day) continue;
    const at = new Date(`${day}T00:00:00Z`);
    if (side === 'to') at.setUTCDate(at.getUTCDate() + 1);
    params.set(side, at.toISOString());
  }
  return params;
}

export async function load({ more = false } = {}) {
  const errorBox = $('audit-error');
  errorBox.replaceChildren();
  // "Load more" continues the list that is shown, whatever the form says now.
  const params = more && audit.params ? new URLSearchParams(audit.params) : filterParams();
  audit.params = new URLSearchParams(params);
  if (more && audit.nextCursor) params.set('cursor', audit.nextCursor);
  let body;
  try {
    body = await api('GET', `/v1/audit?${params}`);
  } catch (err) {
    showError(errorBox, 'Could not load the audit.', err);
    return;
  }
  audit.rows = more ? [...audit.rows, ...listOf(body)] : listOf(body);
  audit.nextCursor = body.nextCursor ?? null;
  const out = $('audit-result');
  if (!audit.rows.length) {
    clear(out, h('p', { class: 'empty' }, 'No changes in this range.'));
  } else {
    clear(
      out,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table table-compact' },
          h('caption', { class: 'visually-hidden' }, 'Admin changes, newest first'),
          h('thead', {}, h('tr', {}, ['When (UTC)', 'Who', 'Action', 'Entity', 'Change'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            audit.rows.map((e) =>
              h('tr', {}, h('td', {}, timeEl(e.at)), h('td', {}, `${e.actor?.name ?? '?'} (${e.actor?.tokenId ?? '?'})`), h('td', {}, e.action), h('td', { class: 'mono' }, `${e.entity} ${e.entityId}`), h('td', {}, diffView(e))),
            ),
          ),
        ),
      ),
    );
  }
  $('audit-more').hidden = !audit.nextCursor;
}

// The review pane: one conversion with its evidence, click, status history, deliveries and review trail
// (GET /v1/conversions/:id), and the approve/reject form.

import { decisionBadge, reasonChips, reviewDecisionBadge, scoreBadge } from './badges.js';
import { clear, h, table } from './dom.js';
import { age, count, money, named, plain, shortId, timeEl, utc } from './format.js';

/** Renders conversion `c` into `pane`; the buttons call `onDecide('approve' | 'reject')`; no form without it. */
export function renderDetail(pane, c, { onDecide }) {
  const reasons = Array.isArray(c.reasons) ? c.reasons : [];
  const reviews = Array.isArray(c.reviews) ? c.reviews : Array.isArray(c.reviewTrail) ? c.reviewTrail : [];
  const last = reviews[reviews.length - 1];
  const note = h('textarea', { id: 'review-note', rows: 2, maxlength: 2000, placeholder: 'Why? Kept in the audit trail.' });
  const form = h(
    'form',
    { class: 'decide', id: 'review-form', onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'field' }, h('label', { for: 'review-note' }, 'Note ', h('span', { class: 'muted shortcut-key', 'aria-hidden': 'true' }, '(n)')), note),
    h(
      'div',
      { class: 'decide-actions' },
      h('button', { type: 'button', class: 'btn btn-approve', id: 'review-approve', onclick: () => onDecide('approve') }, '✓ Approve ', h('kbd', {}, 'a')),
      h('button', { type: 'button', class: 'btn btn-reject', id: 'review-reject', onclick: () => onDecide('reject') }, '✕ Reject ', h('kbd', {}, 'r')),
    ),
    h('div', { id: 'review-form-error' }),
  );
  note.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      note.blur();
      document.querySelector('#queue-body tr[aria-current="true"]')?.focus();
    }
  });

  clear(
    pane,
    h(
      'div',
      { class: 'detail-head' },
      h('div', {}, h('h3', { class: 'mono' }, c.id), h('p', { class: 'muted' }, 'txid ', h('span', { class: 'mono' }, plain(c.txid)), ' · received ', timeEl(c.createdAt, `${utc(c.createdAt, { seconds: true })} UTC`), ` (${age(c.createdAt)} ago)`)),
      scoreBadge(c.score),
    ),
    h(
      'dl',
      { class: 'facts' },
      fact('Decision', decisionBadge(c.decision)),
      fact('Status', plain(c.status)),
      fact('Payout', money(c.payout, c.currency)),
      fact('Source', plain(c.source)),
      fact('Offer', named(c.offerName, c.offerId)),
      fact('Publisher', named(c.publisherName, c.publisherId)),
      fact('Advertiser', named(c.advertiserName, c.advertiserId)),
      fact('Event', plain(c.event)),
      fact('Reasons', reasonChips(reasons)),
    ),
    last ? h('p', { class: 'notice notice-info' }, `Already reviewed: ${{ approve: 'approved', reject: 'rejected' }[last.decision] ?? last.decision} by ${last.by ?? last.reviewer ?? 'someone'} at ${utc(last.at ?? last.createdAt)} UTC. A new decision is added to the trail.`) : null,
    onDecide ? form : null,
    section('Evidence', evidenceTable(c.evidence, reasons)),
    section('Click and user', clickFacts(c)),
    section('Status history', historyTable(c.statusHistory)),
    section('Deliveries', deliveriesTable(c.deliveries)),
    section('Review trail', reviewsTable(reviews)),
  );
}

const fact = (term, value) => h('div', { class: 'fact' }, h('dt', {}, term), h('dd', {}, value));
const section = (title, content) => h('section', { class: 'detail-section' }, h('h4', {}, title), content);

function evidenceTable(evidence, reasons) {
  const list = Array.isArray(evidence) ? evidence : [];
  const rank = (e) => (reasons.includes(e.code) ? 0 : e.evaluated === false ? 2 : 1);
  const sorted = [...list].sort((a, b) => rank(a) - rank(b));
  return table(
    'Evidence',
    ['Rule and note', 'Result', 'Measured', 'Threshold', 'Window and scope'],
    sorted.map((e) => {
      const fired = typeof e.fired === 'boolean' ? e.fired : reasons.includes(e.code);
      const result =
        e.mode === 'off'
          ? h('span', { class: 'result result-off' }, '○ off')
          : e.evaluated === false
            ? h('span', { class: 'result result-skip' }, '? not evaluated')
            : fired
              ? h('span', { class: 'result result-fired' }, `▲ fired${e.points ? ` (+${e.points})` : ''}`)
              : h('span', { class: 'result result-pass' }, e.mode === 'monitor' ? '● monitored' : '✓ passed');
      return [
        [h('span', { class: 'mono' }, plain(e.code)), e.note ? h('div', { class: 'cell-sub wrap' }, e.note) : null],
        result,
        measurement(e.value),
        measurement(e.threshold),
        [plain(e.window ?? undefined), e.scope ? h('div', { class: 'cell-sub wrap' }, e.scope) : null],
      ];
    }),
  );
}

/** A measured value or threshold: scalars as they are, an object as one `key: value` line per field. */
function measurement(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return h('span', { class: 'mono wrap' }, plain(v));
  const entries = Object.entries(v).filter(([, x]) => x !== null && x !== undefined);
  if (!entries.length) return '—';
  return h('span', { class: 'kv' }, entries.map(([k, x]) => h('span', { class: 'kv-line' }, h('span', { class: 'muted' }, `${k}: `), h('span', { class: 'mono' }, plain(x)))));
}

function clickFacts(c) {
  const click = c.click && typeof c.click === 'object' ? c.click : {};
  const subs = (Array.isArray(c.subs) ? c.subs : Array.isArray(click.subs) ? click.subs : []).map((s, i) => (s ? `sub${i + 1}=${s}` : null)).filter(Boolean);
  return h(
    'dl',
    { class: 'facts facts-wide' },
    fact('Click ID', h('span', { class: 'mono wrap' }, plain(c.clickid ?? click.id ?? undefined))),
    fact('Clicked', click.createdAt ? [timeEl(click.createdAt, `${utc(click.createdAt, { seconds: true })} UTC`), click.recorded === false ? ' (click row not recorded)' : ''] : '—'),
    fact('Click IP', h('span', { class: 'mono' }, plain(click.ip ?? undefined))),
    fact('Postback IP', h('span', { class: 'mono' }, plain(c.ip ?? undefined))),
    fact('Click user agent', h('span', { class: 'wrap' }, plain(click.userAgent ?? undefined))),
    fact('Postback user agent', h('span', { class: 'wrap' }, plain(c.ua ?? undefined))),
    fact('Sent from', h('span', { class: 'mono' }, plain(c.sourceIp ?? undefined))),
    fact('Sub IDs', subs.length ? subs.join(' · ') : '—'),
  );
}

function historyTable(history) {
  const list = Array.isArray(history) ? history : [];
  return table(
    'Status history',
    ['When (UTC)', 'Change', 'Payout', 'Source'],
    list.map((s) => [timeEl(s.at, utc(s.at, { seconds: true })), `${s.from ?? '∅'} → ${s.to ?? '?'}`, money(s.payout, s.currency), plain(s.source)]),
    { numeric: [2] },
  );
}

function deliveriesTable(deliveries) {
  const list = Array.isArray(deliveries) ? deliveries : [];
  return table(
    'Deliveries',
    ['Delivery', 'Publisher', 'State', 'Tries', 'Last answer', 'Next / done (UTC)'],
    list.map((d) => {
      const attempts = Array.isArray(d.attempts) ? d.attempts : [];
      const lastTry = attempts[attempts.length - 1];
      const answer = lastTry ? (lastTry.statusCode ? `HTTP ${lastTry.statusCode}` : lastTry.error ?? 'no answer') + (lastTry.latencyMs != null ? ` · ${lastTry.latencyMs} ms` : '') : '—';
      return [
        h('span', { class: 'mono' }, shortId(d.id)),
        d.publisherName ? h('span', { title: d.publisherId }, d.publisherName) : h('span', { class: 'mono' }, shortId(d.publisherId)),
        h('span', { class: `badge badge-${d.state}` }, plain(d.state)),
        Array.isArray(d.attempts) ? String(attempts.length) : count(d.attempts),
        answer,
        d.deliveredAt ? ['delivered ', timeEl(d.deliveredAt)] : d.nextAttemptAt ? ['next ', timeEl(d.nextAttemptAt)] : d.deadlineAt ? ['deadline ', timeEl(d.deadlineAt)] : '—',
      ];
    }),
    { numeric: [3] },
  );
}

function reviewsTable(reviews) {
  return table(
    'Review trail',
    ['When (UTC)', 'Decision', 'By', 'Note'],
    reviews.map((r) => [timeEl(r.at ?? r.createdAt, utc(r.at ?? r.createdAt, { seconds: true })), reviewDecisionBadge(r.decision), plain(r.by ?? r.reviewer ?? r.reviewerName), h('span', { class: 'wrap' }, r.note ?? '')]),
  );
}

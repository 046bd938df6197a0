// Review queue (analysts): flagged conversions nobody has decided yet, most money at risk first (payout ×
// score, as GET /v1/reviews/queue orders them), one selected at a time, approved or rejected with a note. Keys: j/k move, a/r decide, u undoes, n writes a note.

import { ApiFailure, api, showError } from './api.js';
import { reasonChips, scoreBadge } from './badges.js';
import { renderDetail } from './conversion-detail.js';
import { $, clear, h, toast } from './dom.js';
import { age, listOf, money, utc } from './format.js';
import * as pendingDecision from './pending-decision.js';
import * as shortcuts from './shortcuts.js';

const PAGE = 50;
/** The queue keeps fetching pages while fewer than this many unreviewed items are shown. */
const MIN_VISIBLE = 20;
const MAX_AUTO_PAGES = 10;

const q = { items: [], cursor: null, loading: false, selectedId: null, includeReviewed: false, loadSeq: 0, detailSeq: 0, restoreNote: null };

/** Reviewed: an analyst decided (reviewState), or the API no longer calls it flagged. */
const isReviewed = (c) => !!c.pendingDecision || (c.reviewState && c.reviewState !== 'none') || (c.decision && c.decision !== 'flagged');
const visibleQueue = () => q.items.filter((c) => q.includeReviewed || !isReviewed(c));

export function init() {
  $('review-refresh').addEventListener('click', () => load({ reset: true }));
  $('queue-more').addEventListener('click', () => load());
  $('review-include-reviewed').addEventListener('change', (e) => {
    q.includeReviewed = e.target.checked;
    renderQueue();
  });
}

export function reset() {
  pendingDecision.discard();
  Object.assign(q, { items: [], cursor: null, selectedId: null, restoreNote: null });
  q.loadSeq += 1;
  q.detailSeq += 1;
  $('queue-body').replaceChildren();
  $('review-count').textContent = '';
  renderEmptyDetail();
}

export async function load({ reset: fresh = false } = {}) {
  const seq = ++q.loadSeq;
  if (fresh) {
    q.items = [];
    q.cursor = null;
  }
  q.loading = true;
  $('queue-status').textContent = 'Loading…';
  $('review-error').replaceChildren();
  try {
    let pages = 0;
    do {
      const params = new URLSearchParams({ limit: String(PAGE) });
      if (q.cursor) params.set('cursor', q.cursor);
      const body = await api('GET', `/v1/reviews/queue?${params}`);
      if (seq !== q.loadSeq) return;
      const seen = new Set(q.items.map((c) => c.id));
      q.items.push(...listOf(body).filter((c) => c && typeof c.id === 'string' && !seen.has(c.id)));
      q.cursor = body && typeof body.nextCursor === 'string' ? body.nextCursor : null;
      pages += 1;
    } while (q.cursor && visibleQueue().length < MIN_VISIBLE && pages < MAX_AUTO_PAGES);
  } catch (err) {
    if (seq === q.loadSeq) showError($('review-error'), 'Could not load the review queue.', err);
  } finally {
    if (seq === q.loadSeq) q.loading = false;
  }
  if (seq !== q.loadSeq) return;
  const visible = visibleQueue();
  if (!visible.some((c) => c.id === q.selectedId)) q.selectedId = visible[0]?.id ?? null;
  renderQueue();
  if (q.selectedId) void loadDetail(q.selectedId);
  else renderEmptyDetail();
}

function renderQueue() {
  const items = visibleQueue();
  const pending = q.items.filter((c) => !isReviewed(c)).length;
  const more = q.cursor ? '+' : '';
  $('review-count').textContent = pending ? `${pending}${more}` : '';
  $('review-summary').textContent = pending
    ? `${pending}${more} flagged conversion${pending === 1 ? '' : 's'} waiting for a decision.`
    : 'No flagged conversion is waiting for a decision.';
  const body = $('queue-body');
  if (items.length === 0) {
    clear(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, q.loading ? 'Loading…' : 'The queue is empty. Nothing to review.')));
  } else {
    clear(body, items.map(queueRow));
  }
  $('queue-more').hidden = !q.cursor;
  const shown = `${items.length} shown`;
  $('queue-status').textContent = q.loading ? 'Loading…' : q.cursor ? `${shown}; more on the server` : shown;
}

function queueRow(c) {
  const selected = c.id === q.selectedId;
  const reasons = Array.isArray(c.reasons) ? c.reasons : [];
  return h(
    'tr',
    {
      tabindex: selected ? 0 : -1,
      'aria-current': selected ? 'true' : undefined,
      class: isReviewed(c) ? 'is-reviewed' : undefined,
      dataset: { id: c.id },
      onclick: () => select(c.id, { focusRow: false }),
      onkeydown: (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          select(c.id);
        }
      },
    },
    h('td', { class: 'num' }, scoreBadge(c.score)),
    h(
      'td',
      {},
      h('div', { class: 'cell-main mono ellipsis', title: c.id }, c.id),
      h('div', { class: 'cell-sub ellipsis', title: `offer ${c.offerName ?? ''} ${c.offerId ?? '?'}, publisher ${c.publisherName ?? ''} ${c.publisherId ?? '?'}, txid ${c.txid ?? '?'}` }, whoLine(c)),
      isReviewed(c) ? h('div', { class: 'cell-sub' }, reviewedLabel(c)) : null,
    ),
    h('td', {}, reasonChips(reasons, 2)),
    h('td', { class: 'num' }, money(c.payout, c.currency)),
    h('td', { class: 'num' }, h('time', { datetime: c.createdAt, title: `${utc(c.createdAt, { seconds: true })} UTC`, dataset: { age: c.createdAt } }, age(c.createdAt, true))),
  );
}

/** Offer and publisher by name (the API adds names from its catalog), IDs where a name is missing. */
const whoLine = (c) => [c.offerName ?? c.offerId, c.publisherName ?? c.publisherId].filter(Boolean).join(' · ') || (c.txid ?? '');

function reviewedLabel(c) {
  if (c.pendingDecision) return c.pendingDecision === 'approve' ? '… Approving (undo possible)' : '… Rejecting (undo possible)';
  if (c.reviewState === 'approved') return '✓ Approved';
  if (c.reviewState === 'rejected') return '✕ Rejected';
  return `Now ${c.decision}`;
}

function select(id, { focusRow = true } = {}) {
  if (!id) return;
  q.selectedId = id;
  for (const row of $('queue-body').querySelectorAll('tr[data-id]')) {
    const selected = row.dataset.id === id;
    if (selected) row.setAttribute('aria-current', 'true');
    else row.removeAttribute('aria-current');
    row.tabIndex = selected ? 0 : -1;
    if (selected) {
      row.scrollIntoView({ block: 'nearest' });
      if (focusRow) row.focus({ preventScroll: true });
    }
  }
  void loadDetail(id);
}

function move(delta) {
  const items = visibleQueue();
  if (items.length === 0) return;
  const at = items.findIndex((c) => c.id === q.selectedId);
  const next = items[Math.min(items.length - 1, Math.max(0, at === -1 ? 0 : at + delta))];
  if (next && next.id !== q.selectedId) select(next.id);
  else if (delta > 0 && at === items.length - 1 && q.cursor) toast('End of the loaded queue: use “Load more”.', 'info');
}

function renderEmptyDetail() {
  clear($('detail'), h('p', { class: 'empty' }, q.items.length ? 'Select a conversion to see its evidence.' : 'Nothing to review right now.'));
}

async function loadDetail(id) {
  const seq = ++q.detailSeq;
  const pane = $('detail');
  pane.setAttribute('aria-busy', 'true');
  try {
    const c = await api('GET', `/v1/conversions/${encodeURIComponent(id)}`);
    if (seq !== q.detailSeq) return;
    renderDetail(pane, c, { onDecide: decide });
    if (q.restoreNote?.id === id && $('review-note')) $('review-note').value = q.restoreNote.note;
    q.restoreNote = null;
  } catch (err) {
    if (seq === q.detailSeq) showError(pane, `Could not load conversion ${id}.`, err);
  } finally {
    if (seq === q.detailSeq) pane.setAttribute('aria-busy', 'false');
  }
}

/**
 * A decision moves on to the next conversion at once; its POST /v1/conversions/:id/review waits a few
 * seconds behind an Undo button (pending-decision.js), because an approval releases the postback.
 */
function decide(decision) {
  const id = q.selectedId;
  const item = q.items.find((c) => c.id === id);
  if (!id || item?.pendingDecision) return;
  const note = $('review-note')?.value.trim() ?? '';
  const at = visibleQueue().findIndex((c) => c.id === id);
  if (item) item.pendingDecision = decision;
  const verb = decision === 'approve' ? 'Approving' : 'Rejecting';
  pendingDecision.schedule({
    message: `${verb} ${id}…`,
    send: (options) => send(id, decision, note, options),
    onUndo: () => {
      if (item) delete item.pendingDecision;
      q.restoreNote = { id, note };
      renderQueue();
      select(id);
      toast(`Not ${decision === 'approve' ? 'approved' : 'rejected'}: ${id} is back in the queue.`, 'info');
    },
  });
  if (q.includeReviewed) {
    renderQueue();
    return;
  }
  const after = visibleQueue();
  const next = after[Math.min(Math.max(at, 0), after.length - 1)];
  q.selectedId = next?.id ?? null;
  renderQueue();
  if (next) select(next.id);
  else if (q.cursor) void load();
  else renderEmptyDetail();
}

async function send(id, decision, note, { keepalive = false } = {}) {
  const item = q.items.find((c) => c.id === id);
  try {
    const result = await api('POST', `/v1/conversions/${encodeURIComponent(id)}/review`, note ? { decision, note } : { decision }, { keepalive });
    const by = result && (result.by ?? result.reviewer ?? result.reviewerName);
    toast(`${decision === 'approve' ? 'Approved' : 'Rejected'} ${id}${by ? ` (by ${by})` : ''}.`, decision === 'approve' ? 'ok' : 'warn');
    if (item) {
      delete item.pendingDecision;
      item.reviewState = decision === 'approve' ? 'approved' : 'rejected';
    }
    if (q.includeReviewed) renderQueue();
    if (q.selectedId === id) void loadDetail(id);
  } catch (err) {
    if (item) delete item.pendingDecision;
    renderQueue();
    showError($('review-error'), `Could not ${decision} ${id}; it is back in the queue.`, err);
    if (err instanceof ApiFailure && err.status === 403) $('tab-review').hidden = true;
  }
}

/** Keyboard shortcuts while the review tab is shown (shortcuts.js: they can be switched off). */
export function onKey(event) {
  if (shortcuts.isTyping(event)) return;
  const t = event.target instanceof HTMLElement ? event.target : null;
  const inQueue = !!t?.closest('#queue-body');
  const key = event.key;
  // Arrow keys work only with focus in the queue, so they stay on when single-key shortcuts are off.
  if (key === 'ArrowDown' && inQueue) move(1);
  else if (key === 'ArrowUp' && inQueue) move(-1);
  else if (!shortcuts.enabled()) return;
  else if (key === 'j') move(1);
  else if (key === 'k') move(-1);
  else if (key === 'a') decide('approve');
  else if (key === 'r') decide('reject');
  else if (key === 'u') pendingDecision.undo();
  else if (key === 'n') $('review-note')?.focus();
  else return;
  event.preventDefault();
}

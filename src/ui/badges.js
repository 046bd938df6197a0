// Small status marks. Each carries its meaning in text or a symbol as well as colour.

import { h } from './dom.js';
import { plain } from './format.js';

/** Fraud score 0-100 with a bar; the level is also written out for screen readers. */
export function scoreBadge(score) {
  const n = Number(score);
  const level = score === null || score === undefined || !Number.isFinite(n) ? 'none' : n >= 80 ? 'high' : n >= 40 ? 'mid' : 'low';
  const label = { high: 'high risk', mid: 'medium risk', low: 'low risk', none: 'no score' }[level];
  return h(
    'span',
    { class: `score score-${level}`, title: `Fraud score ${plain(score)} of 100 (${label})` },
    h('span', { class: 'score-value' }, level === 'none' ? '—' : String(n)),
    h('span', { class: 'score-bar', 'aria-hidden': 'true' }, h('span', { class: `score-fill w${Math.round(Math.min(100, Math.max(0, n || 0)) / 10)}` })),
    h('span', { class: 'visually-hidden' }, ` (${label})`),
  );
}

/** Reason codes as chips, at most `max` of them and a "+n" chip naming the rest. */
export function reasonChips(reasons, max = Infinity) {
  if (!reasons.length) return h('span', { class: 'muted' }, 'none');
  const shown = reasons.slice(0, max);
  return h(
    'span',
    { class: 'chips' },
    shown.map((r) => h('span', { class: 'chip', title: r }, r)),
    reasons.length > shown.length ? h('span', { class: 'chip chip-more', title: reasons.slice(max).join(', ') }, `+${reasons.length - shown.length}`) : null,
  );
}

export function decisionBadge(decision) {
  const icon = { accepted: '✓', flagged: '⚑', rejected: '✕' }[decision] ?? '';
  return h('span', { class: `badge badge-${decision ?? 'unknown'}` }, `${icon} ${plain(decision)}`.trim());
}

/** A review decision as recorded in the trail (`approve`/`reject`, or their past tense). */
export function reviewDecisionBadge(d) {
  if (d === 'approve' || d === 'approved') return h('span', { class: 'badge badge-accepted' }, '✓ approved');
  if (d === 'reject' || d === 'rejected') return h('span', { class: 'badge badge-rejected' }, '✕ rejected');
  return plain(d);
}

// Rule quality (analyst; GET /v1/fraud/rules/quality): how often each rule fired and how often analysts
// confirmed or overturned it, with the precision's 95 % interval drawn as a bar. A rule analysts mostly
// overturn is called out here and above the review queue, since it is costing review time.

import { api, showError } from './api.js';
import { $, clear, h } from './dom.js';
import { count, utc } from './format.js';

const DAY_MS = 86_400_000;
const quality = { body: null };

export function init() {
  $('quality-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
}

export function reset() {
  quality.body = null;
  $('quality-result').replaceChildren();
  $('quality-error').replaceChildren();
  $('review-quality-callout').replaceChildren();
  $('review-quality-callout').hidden = true;
}

function windowParams() {
  const params = new URLSearchParams();
  const days = Number($('quality-days').value);
  if (Number.isInteger(days) && days > 0) {
    const to = new Date();
    params.set('from', new Date(to.getTime() - days * DAY_MS).toISOString());
    params.set('to', to.toISOString());
  }
  return params;
}

export async function load() {
  $('quality-error').replaceChildren();
  try {
    quality.body = await api('GET', `/v1/fraud/rules/quality?${windowParams()}`);
  } catch (err) {
    showError($('quality-error'), 'Could not load rule quality', err);
    return;
  }
  render(quality.body);
  showCallout(quality.body);
}

/** The review queue's call-out: loaded with the queue so an analyst sees it without opening this tab. */
export async function loadCallout() {
  try {
    showCallout(await api('GET', '/v1/fraud/rules/quality'));
  } catch {
    // The queue works without it; the Rule quality tab shows the error when opened.
  }
}

function lowRules(body) {
  return (body?.rules ?? []).filter((r) => r.assessment === 'low_precision');
}

function showCallout(body) {
  const low = lowRules(body);
  const box = $('review-quality-callout');
  box.hidden = low.length === 0;
  clear(
    box,
    low.length === 0
      ? null
      : [
          h('strong', {}, low.length === 1 ? 'A rule analysts mostly overturn: ' : 'Rules analysts mostly overturn: '),
          low.map((r, i) => [i ? ', ' : '', h('code', {}, r.code), ` (${percent(r.precision)} confirmed of ${count(r.reviewed)} reviewed)`]),
          '. Its flags are more often honest than not: consider its settings for the offers it fires on. ',
          h('a', { href: '#quality' }, 'See rule quality'),
        ],
  );
}

const percent = (p) => (p === null || p === undefined ? '—' : `${Math.round(p * 100)} %`);

/** The precision and its interval on a 0–100 % track; text beside it carries the same figures. */
function intervalBar(r) {
  if (!r.interval) return h('span', { class: 'muted' }, 'no reviews');
  // Positions go through the CSSOM: the page's CSP (style-src 'self') refuses style attributes.
  const range = h('span', { class: 'quality-range' });
  range.style.left = `${r.interval.low * 100}%`;
  range.style.width = `${Math.max(1, (r.interval.high - r.interval.low) * 100)}%`;
  const point = h('span', { class: 'quality-point' });
  point.style.left = `${r.precision * 100}%`;
  return h(
    'span',
    { class: 'quality-cell' },
    h('span', { class: 'quality-track', 'aria-hidden': 'true' }, range, point),
    ` ${percent(r.precision)} (95 %: ${percent(r.interval.low)}–${percent(r.interval.high)})`,
  );
}

const ASSESSMENT = {
  low_precision: ['Low precision', 'badge badge-rejected'],
  too_few_reviews: ['Too few reviews', 'badge'],
  ok: ['OK', 'badge badge-accepted'],
};

function render(body) {
  const headers = ['Rule', 'Fired', 'Reviewed', 'Confirmed (rejected)', 'Overturned (approved)', 'Awaiting review', 'Precision', 'Assessment'];
  const rows = body.rules.map((r) => {
    const [label, cls] = ASSESSMENT[r.assessment] ?? [r.assessment, 'badge'];
    return h(
      'tr',
      { class: r.assessment === 'low_precision' ? 'row-alert' : undefined },
      h('th', { scope: 'row' }, h('code', {}, r.code)),
      [r.fired, r.reviewed, r.confirmed, r.overturned, r.awaitingReview].map((n) => h('td', { class: 'num' }, count(n))),
      h('td', {}, intervalBar(r)),
      h('td', {}, h('span', { class: cls }, label)),
    );
  });
  clear(
    $('quality-result'),
    h(
      'p',
      { class: 'muted' },
      `${count(body.totals.conversions)} conversions created ${utc(body.from)} – ${utc(body.to)} UTC, ${count(body.totals.reviewed)} reviewed. `,
      `Precision is confirmed ÷ reviewed; a rule is called out when even its interval's upper end is below ${percent(body.lowPrecision)}, and needs ${body.minReviews} reviews to be judged.`,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table table-compact', id: 'quality-table' },
        h('caption', { class: 'visually-hidden' }, 'Rule quality from analysts’ decisions'),
        h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { scope: 'col', class: i >= 1 && i <= 5 ? 'num' : undefined }, t)))),
        h('tbody', {}, rows),
      ),
    ),
  );
}

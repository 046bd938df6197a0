// Payouts (finance): the report per publisher (or per advertiser) and currency for a date range, with
// revenue and margin, a bar chart per currency, converted totals in a reporting currency when one is
// chosen, and the CSV, fetched with the token and handed to the browser as a download.

import { api, showError } from './api.js';
import { payoutChart } from './charts.js';
import { $, clear, h, saveDownload, table, toast } from './dom.js';
import { addDecimal, compareDecimal, count, humanize, listOf, money, pick, plain } from './format.js';

const payouts = { result: null };
const intFmt = new Intl.NumberFormat('en-US');

const todayUtc = () => new Date().toISOString().slice(0, 10);

export function init() {
  const today = todayUtc();
  $('payouts-to').value = today;
  $('payouts-from').value = `${today.slice(0, 8)}01`;
  $('payouts-form').addEventListener('submit', load);
  $('payouts-csv').addEventListener('click', downloadCsv);
  // Each report filters by its own party: a publisher for payouts, an advertiser for the advertiser report.
  $('payouts-view').addEventListener('change', () => {
    const byAdvertiser = $('payouts-view').value === 'advertisers';
    $('payouts-publisher').closest('.field').hidden = byAdvertiser;
    $('payouts-advertiser-field').hidden = !byAdvertiser;
  });
}

export function reset() {
  payouts.result = null;
  $('payouts-result').replaceChildren();
  $('payouts-error').replaceChildren();
  $('payouts-publishers').replaceChildren();
}

/** Whole UTC days, both ends included: `to` is sent as the start of the following day. */
function payoutsQuery(format) {
  const fromDay = $('payouts-from').value;
  const toDay = $('payouts-to').value;
  if (!fromDay || !toDay) throw new Error('Choose both dates.');
  if (fromDay > toDay) throw new Error('“From” must not be after “To”.');
  const to = new Date(`${toDay}T00:00:00Z`);
  to.setUTCDate(to.getUTCDate() + 1);
  const params = new URLSearchParams({ from: new Date(`${fromDay}T00:00:00Z`).toISOString(), to: to.toISOString() });
  const view = $('payouts-view').value;
  const publisher = view === 'publishers' ? $('payouts-publisher').value.trim() : '';
  if (publisher) params.set('publisherId', publisher);
  const advertiser = view === 'advertisers' ? $('payouts-advertiser').value.trim() : '';
  if (advertiser) params.set('advertiserId', advertiser);
  const currency = $('payouts-currency').value.trim().toUpperCase();
  if (currency && !/^[A-Z]{3}$/.test(currency)) throw new Error('A reporting currency is a three-letter ISO 4217 code such as USD.');
  if (currency) params.set('currency', currency);
  params.set('format', format);
  const path = view === 'advertisers' ? '/v1/reports/advertisers' : '/v1/reports/payouts';
  return { params, fromDay, toDay, publisher, advertiser, currency, view, path };
}

const FIELDS = [
  { key: 'conversions', label: 'Conversions', aliases: ['conversions', 'conversionCount', 'total_conversions'], optional: true },
  { key: 'approved', label: 'Approved', aliases: ['approved', 'approvedConversions', 'approvedCount'] },
  { key: 'payout', label: 'Payout total', aliases: ['payout', 'payoutTotal', 'total', 'amount'], money: true },
  { key: 'revenue', label: 'Revenue', aliases: ['revenue'], money: true, optional: true },
  { key: 'margin', label: 'Margin', aliases: ['margin'], money: true, optional: true },
  { key: 'pending', label: 'Pending', aliases: ['pending', 'pendingCount'], optional: true },
  { key: 'flagged', label: 'Flagged', aliases: ['flagged', 'flaggedCount'] },
  { key: 'rejected', label: 'Rejected', aliases: ['rejected', 'rejectedCount'] },
  { key: 's2s', label: 'S2S', aliases: ['s2s', 's2sCount', 'bySource.s2s', 'sources.s2s'] },
  { key: 'pixel', label: 'Pixel', aliases: ['pixel', 'pixelCount', 'bySource.pixel', 'sources.pixel'] },
  { key: 'refired', label: 'Re-fired', aliases: ['refired', 'refiredCount'] },
  { key: 'expired', label: 'Expired', aliases: ['expired', 'expiredCount'] },
];
const KNOWN = new Set(['publisherId', 'publisher', 'publisherName', 'currency', 'bySource', 'sources', 'converted', ...FIELDS.flatMap((f) => f.aliases)]);

function normalisePayoutRow(raw) {
  const row = {
    publisherId: pick(raw, 'publisherId', 'publisher.id', 'publisher_id') ?? (typeof raw.publisher === 'string' ? raw.publisher : undefined),
    publisherName: pick(raw, 'publisherName', 'publisher.name'),
    currency: pick(raw, 'currency'),
    extra: {},
  };
  for (const f of FIELDS) row[f.key] = pick(raw, ...f.aliases);
  for (const [k, v] of Object.entries(raw)) if (!KNOWN.has(k) && (v === null || typeof v !== 'object')) row.extra[k] = v;
  return row;
}

/** The report for the form's range (the current month to today at first). */
export async function load(event) {
  event?.preventDefault();
  const errorBox = $('payouts-error');
  const out = $('payouts-result');
  errorBox.replaceChildren();
  let query;
  try {
    query = payoutsQuery('json');
  } catch (err) {
    showError(errorBox, 'Check the filters.', err);
    return;
  }
  const button = $('payouts-show');
  button.disabled = true;
  clear(out, h('p', { class: 'empty card' }, 'Loading report…'));
  try {
    if (query.view === 'advertisers') {
      const report = await api('GET', `/v1/reports/advertisers?${query.params}`);
      payouts.result = null;
      renderAdvertisers(report, query);
      return;
    }
    const body = await api('GET', `/v1/reports/payouts?${query.params}`);
    const rows = listOf(body, 'rows', 'items', 'publishers', 'report').map(normalisePayoutRow);
    payouts.result = { body, rows, query };
    const list = $('payouts-publishers');
    const known = new Set([...list.options].map((o) => o.value));
    for (const r of rows) {
      if (!r.publisherId || known.has(r.publisherId)) continue;
      known.add(r.publisherId);
      list.append(h('option', { value: r.publisherId }, r.publisherName ?? r.publisherId));
    }
    renderPayouts();
  } catch (err) {
    out.replaceChildren();
    showError(errorBox, 'Could not load the payout report.', err);
  } finally {
    button.disabled = false;
  }
}

function renderPayouts() {
  const { rows, query } = payouts.result;
  const out = $('payouts-result');
  const range = `${query.fromDay} to ${query.toDay}${query.publisher ? `, publisher ${query.publisher}` : ''}`;
  if (!rows.length) {
    clear(out, h('div', { class: 'card' }, h('p', { class: 'empty' }, `No conversions from ${range}.`)));
    return;
  }
  const currencies = [...new Set(rows.map((r) => r.currency ?? '—'))].sort();
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extra)))];

  // Columns the contract lists always show; others only when the server sends them.
  const fields = FIELDS.filter((f) => !f.optional || rows.some((r) => r[f.key] !== undefined));
  // The server's own per-currency totals when it sends them; otherwise summed here, exactly.
  const body = payouts.result.body;
  const serverTotals = (Array.isArray(body?.totals) ? body.totals : []).filter((t) => t && typeof t === 'object' && t.currency);
  const totalFor = (cur, field) => {
    const given = serverTotals.find((t) => t.currency === cur);
    const value = given ? pick(given, ...field.aliases) : undefined;
    if (value !== undefined) return value;
    const group = rows.filter((r) => (r.currency ?? '—') === cur);
    return field.money ? group.reduce((a, r) => addDecimal(a, r[field.key] ?? '0'), '0') : group.reduce((a, r) => a + (Number(r[field.key]) || 0), 0);
  };
  const summary = currencies.map((cur) => {
    const group = rows.filter((r) => (r.currency ?? '—') === cur);
    const total = totalFor(cur, FIELDS.find((f) => f.key === 'payout'));
    const approved = Number(totalFor(cur, FIELDS.find((f) => f.key === 'approved'))) || 0;
    return h('div', { class: 'stat stat-money' }, h('dt', {}, `Payout, ${cur}`), h('dd', {}, money(total, cur === '—' ? '' : cur)), h('dd', { class: 'stat-sub' }, `${intFmt.format(approved)} approved · ${group.length} publisher${group.length === 1 ? '' : 's'}`));
  });

  const headers = ['Publisher', 'Currency', ...fields.map((f) => f.label), ...extraKeys.map(humanize)];
  const numeric = headers.map((_, i) => i).filter((i) => i >= 2);
  const bodyRows = [...rows]
    .sort((a, b) => String(a.currency).localeCompare(String(b.currency)) || compareDecimal(b.payout, a.payout) || String(a.publisherId).localeCompare(String(b.publisherId)))
    .map((r) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, h('span', { class: 'mono' }, plain(r.publisherId)), r.publisherName ? h('div', { class: 'cell-sub' }, r.publisherName) : null),
        h('td', {}, plain(r.currency)),
        fields.map((f) => h('td', { class: 'num' }, f.money ? money(r[f.key]) : count(r[f.key]))),
        extraKeys.map((k) => h('td', { class: 'num' }, plain(r.extra[k]))),
      ),
    );
  const foot = currencies.map((cur) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, 'Total'),
      h('td', {}, cur),
      fields.map((f) => h('td', { class: 'num' }, f.money ? money(totalFor(cur, f)) : count(totalFor(cur, f)))),
      extraKeys.map(() => h('td', {})),
    ),
  );

  clear(
    out,
    h('dl', { class: 'stats' }, summary),
    convertedSummary(body?.converted),
    h('div', { class: 'card' }, h('h3', {}, 'Payout per publisher'), h('p', { class: 'muted' }, range, ' (UTC). One chart per currency: amounts in different currencies are not added.'), currencies.map((cur) => payoutChart(cur, rows.filter((r) => (r.currency ?? '—') === cur)))),
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'By publisher and currency'),
      h(
        'div',
        // Scrolls sideways when wide: focusable so the keyboard can scroll it (WCAG 2.1.1).
        { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `Payout report, ${range}` },
        h(
          'table',
          { class: 'table' },
          h('caption', { class: 'visually-hidden' }, `Payout report, ${range}`),
          h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { scope: 'col', class: numeric.includes(i) ? 'num' : undefined }, t)))),
          h('tbody', {}, bodyRows),
          h('tfoot', {}, foot),
        ),
      ),
    ),
  );
}

async function downloadCsv() {
  const errorBox = $('payouts-error');
  errorBox.replaceChildren();
  let query;
  try {
    query = payoutsQuery('csv');
  } catch (err) {
    showError(errorBox, 'Check the filters.', err);
    return;
  }
  const button = $('payouts-csv');
  button.disabled = true;
  button.textContent = 'Preparing CSV…';
  try {
    const res = await api('GET', `${query.path}?${query.params}`, undefined, { accept: 'text/csv', raw: true });
    await saveDownload(res, `${query.view}_${query.fromDay}_${query.toDay}${query.publisher || query.advertiser ? `_${query.publisher || query.advertiser}` : ''}${query.currency ? `_${query.currency}` : ''}.csv`);
    toast('CSV downloaded.');
  } catch (err) {
    showError(errorBox, 'Could not download the CSV.', err);
  } finally {
    button.disabled = false;
    button.textContent = 'Download CSV';
  }
}

/** Converted totals in the reporting currency, and what could not be converted (no rate at or before its day). */
function convertedSummary(converted) {
  if (!converted || typeof converted !== 'object') return null;
  const cur = converted.currency;
  const left = Array.isArray(converted.unconverted) ? converted.unconverted : [];
  return h(
    'div',
    { class: 'card' },
    h('h3', {}, `Converted to ${cur}`),
    h(
      'dl',
      { class: 'stats' },
      ['revenue', 'payout', 'margin'].map((k) => h('div', { class: 'stat stat-money' }, h('dt', {}, humanize(k)), h('dd', {}, money(converted[k], cur)))),
    ),
    left.length
      ? h('p', { class: 'muted' }, 'Not converted (no rate on or before their day): ', left.map((u) => `${money(u.payout, u.currency)} payout, ${money(u.revenue, u.currency)} revenue`).join('; '), '.')
      : h('p', { class: 'muted' }, 'Every amount had a rate.'),
  );
}

const ADVERTISER_FIELDS = ['conversions', 'approved', 'pending', 'flagged', 'rejected', 'overCap', 'revenue', 'payout', 'margin'];
const ADVERTISER_MONEY = new Set(['revenue', 'payout', 'margin']);

/** The advertisers report: what each advertiser owes, what its publishers are paid, and the margin. */
function renderAdvertisers(report, query) {
  const out = $('payouts-result');
  const rows = listOf(report, 'rows');
  const range = `${query.fromDay} to ${query.toDay}${query.advertiser ? `, advertiser ${query.advertiser}` : ''}`;
  const converted = query.currency ? ['convertedRevenue', 'convertedPayout', 'convertedMargin'] : [];
  const headers = ['Advertiser', 'Currency', ...ADVERTISER_FIELDS.map(humanize), ...converted.map(humanize)];
  const line = (r, name) => [
    name,
    plain(r.currency),
    ...ADVERTISER_FIELDS.map((k) => (ADVERTISER_MONEY.has(k) ? money(r[k], r.currency) : count(r[k]))),
    ...(query.currency ? ['revenue', 'payout', 'margin'].map((k) => money(r.converted?.[k], query.currency)) : []),
  ];
  const body = rows.map((r) => line(r, r.advertiserName ? `${r.advertiserName} (${r.advertiserId})` : r.advertiserId));
  const totals = listOf(report, 'totals').map((t) => line(t, 'Total'));
  const numeric = headers.map((_, i) => i).filter((i) => i >= 2);
  clear(
    out,
    convertedSummary(report.converted),
    h('div', { class: 'card' }, h('h3', {}, 'By advertiser and currency'), h('p', { class: 'muted' }, range, ' (UTC). Revenue is what the advertiser owes; margin is revenue − payout.'), table(`Advertiser report, ${range}`, headers, [...body, ...totals], { numeric })),
  );
}

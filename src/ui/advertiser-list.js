// The advertiser's own conversion list (finance): upload their CSV, see what matches, differs, is
// missing or exists only in the engine, and download the same findings as a spreadsheet.

import { api, showError } from './api.js';
import { $, clear, h, saveDownload, table, toast } from './dom.js';
import { count, money, shortId, timeEl } from './format.js';

const ROUTE = '/v1/reconciliations/advertiser-report';

export function init() {
  $('advlist-form').addEventListener('submit', compare);
  $('advlist-csv').addEventListener('click', downloadCsv);
}

export function reset() {
  $('advlist-error').replaceChildren();
  clear($('advlist-result'), h('p', { class: 'empty' }, 'Choose an advertiser and a file.'));
}

/** The form's advertiser and file; undefined, with the reason shown, when one is missing. */
function chosen() {
  const errorBox = $('advlist-error');
  errorBox.replaceChildren();
  const advertiserId = $('advlist-advertiser').value.trim();
  const file = $('advlist-file').files?.[0];
  const missing = !advertiserId ? 'Enter the advertiser ID.' : !file ? 'Choose the advertiser’s CSV file.' : undefined;
  if (missing) {
    showError(errorBox, 'Check the form.', new Error(missing));
    return undefined;
  }
  return { advertiserId, file };
}

async function compare(event) {
  event.preventDefault();
  const input = chosen();
  if (!input) return;
  const errorBox = $('advlist-error');
  const button = $('advlist-compare');
  button.disabled = true;
  clear($('advlist-result'), h('p', { class: 'empty' }, 'Comparing…'));
  try {
    const report = await api('POST', `${ROUTE}?${new URLSearchParams({ advertiserId: input.advertiserId })}`, input.file, { contentType: 'text/csv' });
    render(report, input.file.name);
  } catch (err) {
    reset();
    showError(errorBox, 'Could not compare the file.', err);
  } finally {
    button.disabled = false;
  }
}

function render(report, fileName) {
  const s = report.summary ?? {};
  const window = report.from && report.to ? ['Engine-only conversions are looked for between ', timeEl(report.from), ' and ', timeEl(report.to), ' (UTC).'] : [];
  clear(
    $('advlist-result'),
    h('h3', {}, `${fileName}: ${count(s.rows)} rows`),
    h(
      'ul',
      { class: 'stats' },
      [
        ['Matched', s.matched],
        ['Differing', s.differing],
        ['Missing in the engine', s.missing],
        ['Only in the engine', s.extra],
      ].map(([label, n]) => h('li', {}, h('strong', {}, count(n)), ' ', label)),
    ),
    h('p', { class: 'muted' }, window),
    h('h4', {}, 'Differing'),
    table(
      'Differing conversions',
      ['Line', 'TXID', 'Conversion', 'Field', 'Advertiser', 'Engine'],
      (report.differing ?? []).flatMap((d) => d.differences.map((x) => [d.line, d.txid, shortId(d.conversionId), x.field, x.advertiser, x.engine])),
      { numeric: [0] },
    ),
    h('h4', {}, 'Missing in the engine'),
    table(
      'Conversions missing in the engine',
      ['Line', 'TXID', 'Click ID', 'Payout', 'Status', 'Time (UTC)'],
      (report.missing ?? []).map((m) => [m.line, m.txid, shortId(m.clickid), money(m.payout, m.currency), m.status, timeEl(m.time)]),
      { numeric: [0, 3] },
    ),
    h('h4', {}, 'Only in the engine'),
    table(
      'Conversions only in the engine',
      ['TXID', 'Conversion', 'Payout', 'Status', 'Decision', 'Source', 'Created (UTC)'],
      (report.extra ?? []).map((e) => [e.txid, shortId(e.conversionId), money(e.payout, e.currency), e.status, e.decision, e.source, timeEl(e.createdAt)]),
      { numeric: [2] },
    ),
  );
}

async function downloadCsv() {
  const input = chosen();
  if (!input) return;
  const button = $('advlist-csv');
  button.disabled = true;
  try {
    const query = new URLSearchParams({ advertiserId: input.advertiserId, format: 'csv' });
    const res = await api('POST', `${ROUTE}?${query}`, input.file, { contentType: 'text/csv', accept: 'text/csv', raw: true });
    await saveDownload(res, `advertiser-report_${input.advertiserId}.csv`);
    toast('CSV downloaded.');
  } catch (err) {
    showError($('advlist-error'), 'Could not download the CSV.', err);
  } finally {
    button.disabled = false;
  }
}

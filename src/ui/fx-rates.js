// FX rates (finance; CONTRACT §10): upload a day's rates against a base currency, and see the stored sets.
// Rates are typed one per line as "EUR 0.92" (or "EUR,0.92"), sent as decimal strings, never as numbers.

import { api, showError } from './api.js';
import { $, clear, h, table, toast } from './dom.js';
import { listOf } from './format.js';

const todayUtc = () => new Date().toISOString().slice(0, 10);

export function init() {
  const today = todayUtc();
  $('fx-date').value = today;
  const from = new Date(`${today}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - 30);
  $('fx-list-from').value = from.toISOString().slice(0, 10);
  $('fx-list-to').value = today;
  $('fx-form').addEventListener('submit', upload);
  $('fx-list-form').addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
}

export function reset() {
  $('fx-result').replaceChildren();
  $('fx-error').replaceChildren();
  $('fx-rates').value = '';
}

/** "EUR 0.92\nJPY,151.3" → {EUR: "0.92", JPY: "151.3"}; a line that is not "CODE rate" is named. */
export function parseRateLines(text) {
  const rates = {};
  const bad = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed) return;
    const m = /^([A-Za-z]{3})\s*[,;:=\s]\s*([0-9]+(?:\.[0-9]+)?)$/.exec(trimmed);
    if (!m) bad.push(i + 1);
    else rates[m[1].toUpperCase()] = m[2];
  });
  return { rates, bad };
}

async function upload(event) {
  event.preventDefault();
  const errorBox = $('fx-error');
  errorBox.replaceChildren();
  const date = $('fx-date').value;
  const base = $('fx-base').value.trim().toUpperCase();
  const { rates, bad } = parseRateLines($('fx-rates').value);
  if (!date || !base || bad.length || !Object.keys(rates).length) {
    showError(errorBox, 'Check the rates.', new Error(bad.length ? `Lines ${bad.join(', ')} are not "CODE rate".` : 'Give a day, a base currency and at least one rate.'));
    return;
  }
  try {
    await api('PUT', `/v1/fx-rates/${encodeURIComponent(date)}`, { base, rates });
  } catch (err) {
    showError(errorBox, 'The rates were not stored.', err);
    return;
  }
  toast(`Rates for ${date} stored.`);
  await load();
}

export async function load() {
  const errorBox = $('fx-error');
  const params = new URLSearchParams({ from: $('fx-list-from').value, to: $('fx-list-to').value, limit: '366' });
  let body;
  try {
    body = await api('GET', `/v1/fx-rates?${params}`);
  } catch (err) {
    showError(errorBox, 'Could not load the stored rates.', err);
    return;
  }
  const rows = listOf(body).flatMap((set) => Object.entries(set.rates ?? {}).map(([code, rate]) => [set.date, `1 ${set.base} =`, `${rate} ${code}`]));
  clear($('fx-result'), table('Stored rates', ['Day (UTC)', 'Base', 'Rate'], rows));
}

// FX rates (finance; CONTRACT §10): upload a day's rates against a base currency, and see the stored sets.
// Rates are typed one per line as "EUR 0.92" (or "EUR,0.92"), or pasted as JSON, and sent as decimal
// strings, never as numbers.

import { api, showError } from './api.js';
import { $, clear, h, table, toast } from './dom.js';
import { listOf, timeEl } from './format.js';

const todayUtc = () => new Date().toISOString().slice(0, 10);

export function init() {
  const today = todayUtc();
  $('fx-date').value = today;
  const from = new Date(`${today}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - 30);
  $('fx-list-from').value = from.toISOString().slice(0, 10);
  $('fx-list-to').value = today;
  $('fx-form').addEventListener('submit', upload);
  $('fx-show-day').addEventListener('click', showDay);
  $('fx-list-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
}

export function reset() {
  $('fx-result').replaceChildren();
  $('fx-error').replaceChildren();
  $('fx-day').replaceChildren();
  $('fx-rates').value = '';
}

/**
 * Pasted JSON: `{"EUR": "0.92"}` or a whole `{"base", "rates"}` body. Numbers are taken by their JSON text
 * so "0.10" keeps its digits; `bad` names what is not a currency and a plain decimal rate.
 */
export function parseRateJson(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { rates: {}, bad: ['the JSON does not parse'] };
  }
  const body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) && parsed.rates && typeof parsed.rates === 'object' ? parsed.rates : parsed;
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { rates: {}, bad: ['the JSON must be an object of CODE: rate'] };
  const rates = {};
  const bad = [];
  for (const [code, rate] of Object.entries(body)) {
    const text = typeof rate === 'string' ? rate.trim() : typeof rate === 'number' ? String(rate) : '';
    if (/^[A-Za-z]{3}$/.test(code) && /^[0-9]+(?:\.[0-9]+)?$/.test(text)) rates[code.toUpperCase()] = text;
    else bad.push(code);
  }
  return { rates, bad, base: typeof parsed.base === 'string' ? parsed.base.trim().toUpperCase() : undefined };
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
  const pasted = $('fx-rates').value;
  const json = pasted.trim().startsWith('{');
  const { rates, bad, base: jsonBase } = json ? parseRateJson(pasted) : parseRateLines(pasted);
  if (jsonBase) $('fx-base').value = jsonBase;
  const base = $('fx-base').value.trim().toUpperCase();
  if (!date || !base || bad.length || !Object.keys(rates).length) {
    const why = bad.length ? (json ? `Not a currency and decimal rate: ${bad.join(', ')}.` : `Lines ${bad.join(', ')} are not "CODE rate".`) : 'Give a day, a base currency and at least one rate.';
    showError(errorBox, 'Check the rates.', new Error(why));
    return;
  }
  let stored;
  try {
    stored = await api('PUT', `/v1/fx-rates/${encodeURIComponent(date)}`, { base, rates });
  } catch (err) {
    showError(errorBox, 'The rates were not stored.', err);
    return;
  }
  toast(`Rates for ${date} stored.`);
  renderDay(stored);
  await load();
}

/** The set as the server stored it, which replaced the whole day (a currency left out has no rate that day). */
function renderDay(set) {
  clear(
    $('fx-day'),
    h(
      'div',
      { class: 'card' },
      h('h3', {}, `Stored for ${set.date}: base ${set.base}`),
      set.updatedAt ? h('p', { class: 'muted' }, 'Last changed ', timeEl(set.updatedAt), ' (UTC).') : null,
      table(`Rates on ${set.date}`, ['Currency', `Units per 1 ${set.base}`], Object.entries(set.rates ?? {}).map(([code, rate]) => [code, rate]), { numeric: [1] }),
    ),
  );
}

async function showDay() {
  const errorBox = $('fx-error');
  errorBox.replaceChildren();
  const date = $('fx-date').value;
  if (!date) return showError(errorBox, 'Choose a day.', new Error('Pick the UTC day to show.'));
  try {
    renderDay(await api('GET', `/v1/fx-rates/${encodeURIComponent(date)}`));
  } catch (err) {
    $('fx-day').replaceChildren();
    showError(errorBox, `No rates shown for ${date}.`, err);
  }
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
  const cut = body.nextCursor ? h('p', { class: 'muted' }, `Only the newest 366 days are shown; narrow the range to see days before ${body.nextCursor}.`) : null;
  clear($('fx-result'), table('Stored rates', ['Day (UTC)', 'Base', 'Rate'], rows), cut);
}

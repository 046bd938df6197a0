// Reconciliation (finance): run a window, list runs, and one run's hourly S2S vs pixel chart and rows.

import { api, showError } from './api.js';
import { hourlyChart } from './charts.js';
import { $, clear, h, saveDownload, table, toast } from './dom.js';
import { count, humanize, listOf, named, pad, pick, plain, shortId, timeEl, utc } from './format.js';

const recon = { runs: [], selectedId: null, run: null, filter: '' };

const COUNTS = ['s2s', 'pixel', 'matched', 's2sOnly', 'pixelOnly', 'recovered', 'refired', 'expired'];
const LABELS = { s2s: 'S2S', pixel: 'Pixel', matched: 'Matched', s2sOnly: 'S2S only', pixelOnly: 'Pixel only', recovered: 'Recovered', refired: 'Re-fired', expired: 'Expired' };

/** `datetime-local` values are read as UTC, which the labels say. */
const localInputToIso = (v) => (v ? new Date(`${v}:00Z`).toISOString() : '');
const isoToLocalInput = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;

export function init() {
  const now = new Date();
  now.setUTCMinutes(0, 0, 0);
  $('recon-to').value = isoToLocalInput(now);
  $('recon-from').value = isoToLocalInput(new Date(now.getTime() - 24 * 3600_000));
  $('recon-form').addEventListener('submit', runReconciliation);
  $('recon-refresh').addEventListener('click', () => load());
}

export function reset() {
  Object.assign(recon, { runs: [], selectedId: null, run: null, filter: '' });
  $('runs-body').replaceChildren();
  $('recon-error').replaceChildren();
  clear($('run-detail'), h('p', { class: 'empty' }, 'Run a reconciliation or select a run.'));
}

/** The newest runs (the first page the API returns); `openFirst` shows the newest one. */
export async function load({ openFirst = false } = {}) {
  const body = $('runs-body');
  clear(body, h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'Loading…')));
  try {
    const result = await api('GET', '/v1/reconciliations');
    recon.runs = listOf(result, 'runs');
  } catch (err) {
    recon.runs = [];
    showError($('recon-error'), 'Could not list reconciliation runs.', err);
  }
  renderRuns();
  const first = recon.runs[0];
  if (openFirst && first && !recon.selectedId) void openRun(first.id, first);
}

const RUN_DONE = new Set(['done', 'succeeded', 'finished', 'complete', 'completed']);

function runStateBadge(run) {
  if (!run.state || RUN_DONE.has(run.state)) return null;
  const icon = run.state === 'failed' ? '✕ ' : run.state === 'running' ? '… ' : '';
  return h('span', { class: `badge badge-${run.state === 'failed' ? 'failed' : 'pending'}` }, `${icon}${run.state}`);
}

function renderRuns() {
  const body = $('runs-body');
  const runs = recon.runs;
  if (!runs.length) {
    clear(body, h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'No runs yet.')));
    return;
  }
  clear(
    body,
    runs.map((run) => {
      const selected = run.id === recon.selectedId;
      const ran = pick(run, 'startedAt', 'createdAt', 'ranAt', 'finishedAt');
      const trigger = pick(run, 'trigger', 'kind', 'origin');
      const totals = run.totals && typeof run.totals === 'object' ? run.totals : Array.isArray(run.rows) ? sumRows(run.rows) : {};
      return h(
        'tr',
        {
          tabindex: 0,
          'aria-current': selected ? 'true' : undefined,
          dataset: { id: run.id },
          onclick: () => openRun(run.id),
          onkeydown: (e) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              void openRun(run.id);
            }
          },
        },
        h(
          'td',
          {},
          h('div', { class: 'cell-main nowrap' }, `${utc(run.from)} →`),
          h('div', { class: 'cell-main nowrap' }, utc(run.to)),
          h('div', { class: 'cell-sub' }, h('span', { class: 'mono' }, shortId(run.id)), ran ? [' · ran ', timeEl(ran)] : null, trigger ? ` · ${trigger}` : null),
        ),
        h('td', { class: 'num' }, totals.s2s !== undefined || totals.pixel !== undefined ? `${count(totals.s2s)} / ${count(totals.pixel)}` : '—', h('div', {}, runStateBadge(run))),
      );
    }),
  );
}

async function openRun(id, preview) {
  recon.selectedId = id;
  recon.filter = '';
  renderRuns();
  const pane = $('run-detail');
  if (preview && Array.isArray(preview.rows)) renderRun(preview);
  else clear(pane, h('p', { class: 'empty' }, 'Loading run…'));
  try {
    const run = await api('GET', `/v1/reconciliations/${encodeURIComponent(id)}`);
    if (recon.selectedId !== id) return;
    renderRun(run);
  } catch (err) {
    if (recon.selectedId === id) showError(pane, `Could not load run ${id}.`, err);
  }
}

async function runReconciliation(event) {
  event.preventDefault();
  const from = localInputToIso($('recon-from').value);
  const to = localInputToIso($('recon-to').value);
  const errorBox = $('recon-error');
  errorBox.replaceChildren();
  if (!from || !to) return showError(errorBox, 'Choose a window.', new Error('Both “From” and “To” are needed.'));
  if (from >= to) return showError(errorBox, 'Choose a window.', new Error('“From” must be before “To”.'));
  const button = $('recon-run');
  button.disabled = true;
  button.textContent = 'Running…';
  try {
    const run = await api('POST', '/v1/reconciliations', { from, to });
    toast(`Reconciliation ${run?.id ?? ''} finished.`);
    recon.runs = [run, ...recon.runs.filter((r) => r.id !== run.id)];
    recon.selectedId = run.id;
    renderRuns();
    if (Array.isArray(run.rows)) renderRun(run);
    else void openRun(run.id);
    void load();
  } catch (err) {
    showError(errorBox, 'The reconciliation did not run.', err);
  } finally {
    button.disabled = false;
    button.textContent = 'Run reconciliation';
  }
}

function sumRows(rows) {
  const totals = {};
  for (const row of rows) for (const key of COUNTS) totals[key] = (totals[key] ?? 0) + (Number(row[key]) || 0);
  return totals;
}

function renderRun(run) {
  recon.run = run;
  const pane = $('run-detail');
  const rows = Array.isArray(run.rows) ? run.rows : [];
  const pairs = [...new Set(rows.map((r) => `${r.offerId ?? '?'}|${r.publisherId ?? '?'}`))].sort();
  const filter = pairs.includes(recon.filter) ? recon.filter : '';
  const shown = filter ? rows.filter((r) => `${r.offerId ?? '?'}|${r.publisherId ?? '?'}` === filter) : rows;
  const totals = filter ? sumRows(shown) : run.totals && typeof run.totals === 'object' ? run.totals : sumRows(rows);
  const names = new Map(rows.flatMap((r) => [[`o|${r.offerId}`, r.offerName], [`p|${r.publisherId}`, r.publisherName]]));
  const totalKeys = [...COUNTS.filter((k) => k in totals), ...Object.keys(totals).filter((k) => !COUNTS.includes(k) && typeof totals[k] !== 'object')];

  const select = h(
    'select',
    {
      id: 'recon-filter',
      onchange: (e) => {
        recon.filter = e.target.value;
        renderRun(run);
      },
    },
    h('option', { value: '' }, `All offers and publishers (${pairs.length})`),
    pairs.map((p) => {
      const [offer, publisher] = p.split('|');
      return h('option', { value: p, selected: p === filter }, `${names.get(`o|${offer}`) ?? offer} · ${names.get(`p|${publisher}`) ?? publisher}`);
    }),
  );

  clear(
    pane,
    h(
      'div',
      { class: 'card-head' },
      h(
        'div',
        {},
        h('h3', {}, 'Run ', h('span', { class: 'mono' }, plain(run.id)), ' ', runStateBadge(run)),
        h('p', { class: 'muted' }, `Window ${utc(run.from)} → ${utc(run.to)} UTC`),
        h(
          'p',
          { class: 'muted small' },
          [
            run.trigger ? `Trigger: ${run.trigger}` : null,
            run.requestedBy ? `by ${run.requestedBy}` : null,
            pick(run, 'startedAt', 'createdAt') ? `started ${utc(pick(run, 'startedAt', 'createdAt'), { seconds: true })}` : null,
            run.finishedAt ? `finished ${utc(run.finishedAt, { seconds: true })}` : null,
          ]
            .filter(Boolean)
            .join(' · '),
        ),
      ),
      h(
        'div',
        { class: 'row-actions' },
        pairs.length > 1 ? h('div', { class: 'field field-compact' }, h('label', { for: 'recon-filter' }, 'Show'), select) : null,
        h('button', { type: 'button', class: 'btn btn-small', onclick: (e) => download(run.id, 'csv', e.currentTarget) }, 'Download CSV'),
        h('button', { type: 'button', class: 'btn btn-small', onclick: (e) => download(run.id, 'html', e.currentTarget) }, 'Download HTML report'),
      ),
    ),
    h(
      'dl',
      { class: 'stats' },
      totalKeys.map((k) => h('div', { class: `stat stat-${k}` }, h('dt', {}, LABELS[k] ?? humanize(k)), h('dd', {}, count(totals[k])))),
    ),
    run.error ? h('div', { class: 'notice notice-error', role: 'alert' }, h('p', {}, h('strong', {}, `This run ${run.state ?? 'reported an error'}.`), ' ', String(run.error))) : null,
    rootCauses(run.rootCauses, filter !== ''),
    hourlyChart(shown, run),
    h('h4', { class: 'table-title' }, 'Rows'),
    table(
      'Reconciliation rows',
      ['Hour (UTC)', 'Offer / publisher', ...COUNTS.map((k) => LABELS[k])],
      [...shown]
        .sort((a, b) => String(a.hour).localeCompare(String(b.hour)) || String(a.offerId).localeCompare(String(b.offerId)))
        .map((r) => [timeEl(r.hour), [h('div', {}, named(r.offerName, r.offerId)), h('div', { class: 'cell-sub' }, named(r.publisherName, r.publisherId))], ...COUNTS.map((k) => count(r[k]))]),
      { numeric: COUNTS.map((_, i) => i + 2) },
    ),
  );
}

/** Why S2S and pixel disagree, as counts per cause, when the run reports them. */
function rootCauses(causes, filtered) {
  if (!causes || typeof causes !== 'object' || Array.isArray(causes)) return null;
  const entries = Object.entries(causes).filter(([, v]) => v !== null && typeof v !== 'object');
  if (!entries.length) return null;
  return h(
    'div',
    { class: 'causes' },
    h('span', { class: 'causes-title' }, filtered ? 'Root causes (whole run)' : 'Root causes'),
    entries.map(([k, v]) => h('span', { class: 'chip chip-neutral' }, `${humanize(k)}: ${count(v)}`)),
  );
}

/** The run's rows as CSV or its page with the chart as HTML, rendered by the API from the database. */
async function download(id, format, button) {
  button.disabled = true;
  const type = format === 'csv' ? 'text/csv' : 'text/html';
  try {
    const res = await api('GET', `/v1/reconciliations/${encodeURIComponent(id)}?format=${format}`, undefined, { accept: type, raw: true });
    await saveDownload(res, `reconciliation-${id}.${format}`, type);
    toast(`${format.toUpperCase()} downloaded.`);
  } catch (err) {
    showError($('recon-error'), `Could not download run ${id} as ${format.toUpperCase()}.`, err);
  } finally {
    button.disabled = false;
  }
}

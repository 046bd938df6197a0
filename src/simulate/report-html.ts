import { pct, type Outcome } from './evaluate.js';
import { patternCharts } from './interval-chart.js';
import { poolSeeds } from './seeds.js';
import type { SimReport } from './report.js';

/**
 * reports/fraud-eval.html: one self-contained page (inline CSS and SVG, no script, nothing fetched),
 * so it can be attached to a ticket or opened from disk.
 */

export const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The report pages' shared stylesheet. */
export const PAGE_STYLE = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.muted{color:#6b7280}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{border:1px solid #e5e7eb;border-left:5px solid;border-radius:6px;padding:10px}.card.pass{border-left-color:#16a34a}.card.fail{border-left-color:#dc2626}
.verdict{font-weight:700;font-size:12px}.pass .verdict{color:#16a34a}.fail .verdict{color:#dc2626}.value{font-size:22px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;height:auto;font-size:11px}.chart text{fill:#374151}.chart .grid{stroke:#e5e7eb}.chart .axis{stroke:#9ca3af}
ul{padding-left:20px}`;

const OUTCOME_COLORS: Record<Outcome, string> = { refused: '#6b7280', duplicate: '#9ca3af', accepted: '#16a34a', flagged: '#f59e0b', rejected: '#dc2626' };
const OUTCOME_ORDER: Outcome[] = ['refused', 'duplicate', 'rejected', 'flagged', 'accepted'];

type Part = { name: string; value: number; color: string };

/** Horizontal 100 % stacked bars, one per row, with a legend. */
function stackedBars(rows: { label: string; parts: Part[] }[]): string {
  const labelW = 170;
  const barW = 460;
  const rowH = 26;
  const h = rows.length * rowH + 34;
  const bars = rows
    .map((r, i) => {
      const total = r.parts.reduce((s, p) => s + p.value, 0) || 1;
      let x = labelW;
      const y = 8 + i * rowH;
      const rects = r.parts
        .filter((p) => p.value > 0)
        .map((p) => {
          const w = (p.value / total) * barW;
          const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${p.color}"><title>${esc(`${r.label}: ${p.name} ${p.value} (${pct(p.value / total)})`)}</title></rect>`;
          x += w;
          return rect;
        })
        .join('');
      return `<text x="${labelW - 8}" y="${y + 13}" text-anchor="end">${esc(r.label)}</text>${rects}`;
    })
    .join('');
  const legend = legendRow(OUTCOME_ORDER.map((o) => ({ name: o, color: OUTCOME_COLORS[o] })), labelW, h - 12);
  return `<svg viewBox="0 0 ${labelW + barW + 10} ${h}" role="img" class="chart">${bars}${legend}</svg>`;
}

function legendRow(items: { name: string; color: string }[], x0: number, y: number): string {
  let x = x0;
  return items
    .map((it) => {
      const out = `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${it.color}"/><text x="${x + 14}" y="${y}">${esc(it.name)}</text>`;
      x += 24 + it.name.length * 7;
      return out;
    })
    .join('');
}

/** Grouped horizontal bars on a 0-100 % axis (precision and recall per reason code). */
function groupedPercentBars(rows: { label: string; values: (number | null)[] }[], series: { name: string; color: string }[]): string {
  const labelW = 230;
  const barW = 400;
  const groupH = series.length * 12 + 10;
  const h = rows.length * groupH + 40;
  const body = rows
    .map((r, i) => {
      const y = 6 + i * groupH;
      const bars = r.values
        .map((v, j) => {
          const yy = y + j * 12;
          if (v === null) return `<text x="${labelW + 4}" y="${yy + 9}" class="muted">n/a</text>`;
          return `<rect x="${labelW}" y="${yy}" width="${(v * barW).toFixed(1)}" height="10" fill="${series[j]?.color}"><title>${esc(`${r.label} ${series[j]?.name}: ${pct(v)}`)}</title></rect>`;
        })
        .join('');
      return `<text x="${labelW - 8}" y="${y + groupH / 2}" text-anchor="end">${esc(r.label)}</text>${bars}`;
    })
    .join('');
  const axisY = h - 30;
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => `<line x1="${labelW + t * barW}" x2="${labelW + t * barW}" y1="0" y2="${axisY}" class="grid"/><text x="${labelW + t * barW}" y="${axisY + 12}" text-anchor="middle">${t * 100} %</text>`)
    .join('');
  return `<svg viewBox="0 0 ${labelW + barW + 20} ${h}" role="img" class="chart">${ticks}${body}${legendRow(series, labelW, h - 4)}</svg>`;
}

/** Vertical columns, one or two series side by side, each scaled to its own share of the total. */
function columns(labels: string[], series: { name: string; color: string; values: number[] }[], unit: 'share' | 'count'): string {
  const w = 640;
  const h = 220;
  const plotH = 150;
  const slot = (w - 40) / labels.length;
  const barW = (slot - 8) / series.length;
  const scaled = series.map((s) => {
    const total = s.values.reduce((a, b) => a + b, 0) || 1;
    return s.values.map((v) => (unit === 'share' ? v / total : v));
  });
  const max = Math.max(...scaled.flat(), 1e-9);
  const bars = labels
    .map((label, i) => {
      const x0 = 30 + i * slot;
      const cols = series
        .map((s, j) => {
          const v = scaled[j]?.[i] ?? 0;
          const bh = (v / max) * plotH;
          const shown = unit === 'share' ? `${pct(v)} (${s.values[i]})` : String(s.values[i]);
          return `<rect x="${(x0 + 4 + j * barW).toFixed(1)}" y="${(10 + plotH - bh).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${s.color}"><title>${esc(`${s.name}, ${label}: ${shown}`)}</title></rect>`;
        })
        .join('');
      return `${cols}<text x="${(x0 + slot / 2).toFixed(1)}" y="${plotH + 26}" text-anchor="middle">${esc(label)}</text>`;
    })
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" role="img" class="chart"><line x1="30" x2="${w - 10}" y1="${plotH + 10}" y2="${plotH + 10}" class="axis"/>${bars}${legendRow(series, 30, h - 6)}</svg>`;
}

export function tableHtml(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${i > 0 && typeof c === 'number' ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function htmlReport(r: SimReport): string {
  const e = r.evaluation;
  const o = e.overall;
  const cards = e.thresholds
    .map((t) => {
      const value = t.id === 'honest_rejected' ? String(t.value) : pct(t.value);
      return `<div class="card ${t.pass ? 'pass' : 'fail'}"><div class="verdict">${t.pass ? 'PASS' : 'FAIL'}</div><div class="value">${esc(value)}</div><div>${esc(t.description)}</div><div class="muted">target ${esc(t.target)}${t.detail ? `<br>${esc(t.detail)}` : ''}</div></div>`;
    })
    .join('');
  const outcomeChart = stackedBars(e.patterns.map((p) => ({ label: p.pattern, parts: OUTCOME_ORDER.map((k) => ({ name: k, value: p.outcomes[k], color: OUTCOME_COLORS[k] })) })));
  const reasonChart = groupedPercentBars(
    e.reasons.map((x) => ({ label: x.code, values: [x.precision, x.recall.rate] })),
    [
      { name: 'precision', color: '#2563eb' },
      { name: 'recall', color: '#0d9488' },
    ],
  );
  const bands = Array.from({ length: 10 }, (_, i) => (i === 9 ? '90-100' : `${i * 10}-${i * 10 + 9}`));
  const scoreChart = columns(
    bands,
    [
      { name: 'honest', color: '#16a34a', values: e.scores.honest },
      { name: 'fraud', color: '#dc2626', values: e.scores.fraud },
    ],
    'share',
  );
  const ctitChart = columns(e.honestCtit.map((b) => b.bucket), [{ name: 'honest conversions', color: '#2563eb', values: e.honestCtit.map((b) => b.n) }], 'count');
  const patternRows = e.patterns.map((p) => [
    p.pattern,
    p.kind,
    p.attempts,
    p.outcomes.refused,
    p.outcomes.duplicate,
    p.outcomes.accepted,
    p.outcomes.flagged,
    p.outcomes.rejected,
    pct(p.caught.rate),
    p.kind === 'honest' ? `${pct(p.flagged.rate, 2)} flagged of ${p.flagged.of}` : `${pct(p.judged.rate)} of ${p.judged.of}${p.outsideTarget ? ' (not judged)' : ''}`,
    Object.entries(p.variants)
      .map(([v, x]) => `${v} ${x.n}/${x.of}`)
      .join(', '),
    Object.entries(p.refusedBy)
      .map(([k, n]) => `${k} ×${n}`)
      .join(', '),
  ]);
  const reasonRows = e.reasons.map((x) => [x.code, x.firedHonest, x.firedFraud, pct(x.precision), pct(x.recall.rate), `${x.recall.n}/${x.recall.of}`]);
  const queueRows = r.reviewQueueTop.map((q) => [q.id, q.priority, q.score, q.payout, q.reasons.join(', '), q.label]);
  const deliveries = r.deliveries
    ? `<p>Outbound postbacks: <b>${r.deliveries.received}</b> received by the publishers' endpoint for <b>${r.deliveries.expected}</b> accepted conversions; ${r.deliveries.repeated} received more than once; ${r.deliveries.unexpected} for a conversion that was not accepted.</p>`
    : '<p>Outbound postbacks were not observed (the simulator drove an engine it did not start).</p>';

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fraud evaluation, seed ${esc(r.seed)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
${PAGE_STYLE}
</style></head><body>
<h1>Fraud evaluation</h1>
<p class="muted">Seed ${esc(r.seed)} · ${esc(r.traffic.clicks.toLocaleString('en-US'))} clicks and ${esc(r.traffic.postbacks.toLocaleString('en-US'))} postbacks over HTTP in ${esc(r.durationS.toFixed(1))} s · ${esc(r.target)} · started ${esc(r.startedAt)}</p>
<h2>Targets</h2><div class="cards">${cards}</div>
<p>Overall: precision <b>${pct(o.precision)}</b> (flagged or rejected conversions that are fraud), recall <b>${pct(o.recall.rate)}</b> (fraud conversions flagged or rejected, ${o.recall.n}/${o.recall.of}); fraud attempts caught including intake refusals and duplicates <b>${pct(o.attemptsCaught.rate)}</b> (${o.attemptsCaught.n}/${o.attemptsCaught.of}). Honest: ${o.honestConversions} conversions, ${o.honestFlagged.n} flagged (${pct(o.honestFlagged.rate, 2)}${Object.keys(o.honestFlaggedBy).length ? `, by ${esc(Object.entries(o.honestFlaggedBy).map(([k, n]) => `${k} ×${n}`).join(', '))}` : ''}), ${o.honestRejected} rejected, ${o.honestRefused} postbacks refused.</p>
${deliveries}
<h2>Each pattern against its target</h2>${patternCharts(poolSeeds([r]).patterns)}
<h2>What happened to each pattern</h2>${outcomeChart}
${tableHtml(['pattern', 'kind', 'attempts', 'refused', 'duplicate', 'accepted', 'flagged', 'rejected', 'caught', 'target rate', 'caught by variant', 'refusals'], patternRows)}
<p class="muted">"Judged" is what the targets count: every attempt of a per-conversion pattern; for aggregate patterns, the attempts sent once the rule's minimum volume was reached (the 6th conversion of an address for ip_burst; a segment with 10 conversions whose offer has 1,000 other clicks for conversion_rate_spike; every attempt for click flooding).</p>
<h2>Precision and recall per reason code</h2>${reasonChart}
${tableHtml(['reason code', 'on honest', 'on fraud', 'precision', 'recall', 'recall (n/of)'], reasonRows)}
<p class="muted">Precision: conversions carrying the code that were fraud. Recall: fraud attempts whose pattern should produce the code (committed, past minimum volume) that carry it. n/a: the code never fired, or no pattern targets it.</p>
<h2>Scores</h2>${scoreChart}<p class="muted">Share of each group's committed conversions per score band (flag at 40, reject at 80).</p>
<h2>Honest click-to-conversion times</h2>${ctitChart}
<h2>The review queue's first page</h2>
${queueRows.length ? tableHtml(['conversion', 'priority (payout minor units × score)', 'score', 'payout', 'reasons', 'what it really was'], queueRows) : '<p>Empty.</p>'}
<h2>Method</h2><ul>${r.method.map((m) => `<li>${esc(m)}</li>`).join('')}</ul>
${r.errors.length ? `<p>${r.errors.length} client errors; first: ${esc(r.errors[0])}</p>` : ''}
</body></html>
`;
}

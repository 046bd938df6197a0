import type { RunRecord, RunRow } from '../reconcile/runs-store.js';

/**
 * The run's HTML page: totals, a chart of S2S against pixel conversions per UTC hour (all offers and
 * publishers together), root causes and the rows. One file with inline CSS and SVG and no external
 * resource, so it opens offline, in a mail attachment, or years later.
 */

const COUNTS = ['s2s', 'pixel', 'matched', 's2sOnly', 'pixelOnly', 'recovered', 'refired', 'expired'] as const;
const LABELS: Record<(typeof COUNTS)[number], string> = {
  s2s: 'S2S', pixel: 'Pixel', matched: 'Matched', s2sOnly: 'S2S only', pixelOnly: 'Pixel only',
  recovered: 'Recovered', refired: 'Re-fired', expired: 'Expired',
};
const HOUR_MS = 3_600_000;

const esc = (v: unknown) =>
  String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const utc = (d: Date) => d.toISOString().replace('T', ' ').replace(/:\d{2}\.\d{3}Z$/, ' UTC');

export function hourlySeries(from: Date, to: Date, rows: RunRow[]): { hour: Date; s2s: number; pixel: number }[] {
  const byHour = new Map<number, { s2s: number; pixel: number }>();
  for (const r of rows) {
    const cur = byHour.get(r.hour.getTime()) ?? { s2s: 0, pixel: 0 };
    cur.s2s += r.s2s;
    cur.pixel += r.pixel;
    byHour.set(r.hour.getTime(), cur);
  }
  const series = [];
  for (let t = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS; t < to.getTime(); t += HOUR_MS) {
    series.push({ hour: new Date(t), ...(byHour.get(t) ?? { s2s: 0, pixel: 0 }) });
  }
  return series;
}

/** A round axis step (1, 2, 2.5, 5 × 10^n, whole numbers) giving about four grid lines. */
function niceStep(max: number): number {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return Math.max(1, Math.ceil(step));
}

function chart(series: { hour: Date; s2s: number; pixel: number }[]): string {
  const W = 960, H = 300, left = 56, right = 12, top = 16, bottom = 44;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(1, ...series.flatMap((p) => [p.s2s, p.pixel]));
  const step = niceStep(max);
  const topValue = Math.ceil(max / step) * step;
  const groupW = plotW / Math.max(1, series.length);
  const barW = Math.max(0.5, groupW * 0.4);
  const y = (v: number) => top + plotH - (v / topValue) * plotH;
  const parts: string[] = [];
  for (let v = 0; v <= topValue; v += step) {
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${v}</text>`);
  }
  const labelEvery = Math.max(1, Math.ceil(series.length / 12));
  series.forEach((p, i) => {
    const x = left + i * groupW + groupW * 0.1;
    const title = `${utc(p.hour)}: S2S ${p.s2s}, pixel ${p.pixel}`;
    parts.push(`<rect x="${x}" y="${y(p.s2s)}" width="${barW}" height="${top + plotH - y(p.s2s)}" class="s2s"><title>${esc(title)}</title></rect>`);
    parts.push(`<rect x="${x + barW}" y="${y(p.pixel)}" width="${barW}" height="${top + plotH - y(p.pixel)}" class="pixel"><title>${esc(title)}</title></rect>`);
    if (i % labelEvery === 0) {
      parts.push(`<text x="${x + barW}" y="${H - bottom + 16}" class="tick" text-anchor="middle">${esc(p.hour.toISOString().slice(5, 13).replace('T', ' '))}h</text>`);
    }
  });
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="S2S and pixel conversions per UTC hour">
<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#f2a541"/><line x1="0" y1="0" x2="0" y2="4" stroke="#8a5a12" stroke-width="1.5"/></pattern></defs>
${parts.join('\n')}
<line x1="${left}" x2="${W - right}" y1="${top + plotH}" y2="${top + plotH}" class="axis"/>
<text x="${left}" y="${H - 6}" class="tick">UTC hour (MM-DD HH)</text>
<rect x="${W - 190}" y="4" width="12" height="12" class="s2s"/><text x="${W - 172}" y="14" class="tick">S2S</text>
<rect x="${W - 120}" y="4" width="12" height="12" class="pixel"/><text x="${W - 102}" y="14" class="tick">Pixel</text>
</svg>`;
}

export function renderRunHtml(run: RunRecord, rows: RunRow[]): string {
  const totals = Object.fromEntries(COUNTS.map((k) => [k, rows.reduce((n, r) => n + r[k], 0)]));
  const causes = Object.entries(run.rootCauses ?? {}).sort((a, b) => b[1] - a[1]);
  const table = (head: string[], body: string[][]) =>
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${body
      .map((r) => `<tr>${r.map((c, i) => `<td${i >= head.length - COUNTS.length && /^\d+$/.test(c) ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reconciliation ${esc(run.id)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1d2430}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d5dae1;padding:.25rem .6rem;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
dl{display:flex;flex-wrap:wrap;gap:1rem}dl div{border:1px solid #d5dae1;padding:.4rem .8rem;border-radius:6px}dt{font-size:.8rem;color:#5a6472}dd{margin:0;font-size:1.2rem;font-weight:600}
svg{width:100%;max-width:960px;height:auto}.grid{stroke:#e6e9ee}.axis{stroke:#5a6472}.tick{font-size:11px;fill:#5a6472}.s2s{fill:#2f6db5}.pixel{fill:url(#hatch)}
</style></head><body>
<h1>Reconciliation run <code>${esc(run.id)}</code></h1>
<p>Window ${esc(utc(run.from))} to ${esc(utc(run.to))} · trigger ${esc(run.trigger)} · ${esc(run.state)}${run.finishedAt ? ` · finished ${esc(utc(run.finishedAt))}` : ''}</p>
<dl>${COUNTS.map((k) => `<div><dt>${LABELS[k]}</dt><dd>${totals[k]}</dd></div>`).join('')}</dl>
<h2>S2S against pixel per hour</h2>
${chart(hourlySeries(run.from, run.to, rows))}
<h2>Why S2S postbacks are missing</h2>
${causes.length === 0 ? '<p>No pixel-only conversions in this window.</p>' : table(['Root cause', 'Pixel-only conversions'], causes.map(([c, n]) => [c, String(n)]))}
<h2>Rows</h2>
${rows.length === 0 ? '<p>No conversions or pixels in this window.</p>' : table(
    ['Hour (UTC)', 'Offer', 'Publisher', ...COUNTS.map((k) => LABELS[k])],
    rows.map((r) => [utc(r.hour), r.offerId, r.publisherId, ...COUNTS.map((k) => String(r[k]))]),
  )}
</body></html>
`;
}

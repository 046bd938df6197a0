import type { PooledPattern } from './seeds.js';
import { CAUGHT_TARGET, HONEST_FLAGGED_TARGET, pct } from './targets.js';

/**
 * One horizontal bar per pattern on a percent axis: the bar is the pooled rate, the black error bar
 * its 95 % Wilson interval, the grey band behind it the lowest to highest per-seed rate, and the
 * dashed red line the goal. Inline SVG, no script: the page stays self-contained.
 */

export type IntervalRow = { label: string; rate: number | null; wilson95: [number, number] | null; seedRange: [number, number] | null; note?: string };

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `goal` is drawn at that rate; `pass` says which side of it is good, for the bars' colour. */
export function intervalChart(rows: IntervalRow[], o: { goal: number; goalLabel: string; axisMax: number; pass: (rate: number) => boolean }): string {
  const labelW = 190;
  const barW = 440;
  const rowH = 24;
  const top = 18;
  const h = top + rows.length * rowH + 26;
  const x = (v: number) => labelW + (Math.min(v, o.axisMax) / o.axisMax) * barW;
  const ticks = Array.from({ length: 5 }, (_, i) => (o.axisMax * i) / 4)
    .map((t) => `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top - 4}" y2="${h - 22}" class="grid"/><text x="${x(t).toFixed(1)}" y="${h - 10}" text-anchor="middle">${esc(pct(t, 0))}</text>`)
    .join('');
  const bars = rows
    .map((r, i) => {
      const y = top + i * rowH;
      const mid = y + 9;
      const name = `<text x="${labelW - 8}" y="${y + 13}" text-anchor="end">${esc(r.label)}</text>`;
      if (r.rate === null) return `${name}<text x="${labelW + 4}" y="${y + 13}" class="muted">nothing judged</text>`;
      const title = `<title>${esc(`${r.label}: ${pct(r.rate)}; 95 % Wilson ${r.wilson95 ? `${pct(r.wilson95[0])} – ${pct(r.wilson95[1])}` : 'n/a'}; seeds ${r.seedRange ? `${pct(r.seedRange[0])} – ${pct(r.seedRange[1])}` : 'n/a'}${r.note ? `; ${r.note}` : ''}`)}</title>`;
      const band = r.seedRange ? `<rect x="${x(r.seedRange[0]).toFixed(1)}" y="${y}" width="${Math.max(1, x(r.seedRange[1]) - x(r.seedRange[0])).toFixed(1)}" height="18" class="seeds"/>` : '';
      const fill = r.note ? '#9ca3af' : o.pass(r.rate) ? '#16a34a' : '#dc2626';
      const bar = `<rect x="${labelW}" y="${y + 4}" width="${Math.max(0.5, x(r.rate) - labelW).toFixed(1)}" height="10" fill="${fill}" fill-opacity="0.8"/>`;
      const err = r.wilson95
        ? `<line x1="${x(r.wilson95[0]).toFixed(1)}" x2="${x(r.wilson95[1]).toFixed(1)}" y1="${mid}" y2="${mid}" class="err"/>` +
          r.wilson95.map((v) => `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${mid - 5}" y2="${mid + 5}" class="err"/>`).join('')
        : '';
      return `<g>${title}${name}${band}${bar}${err}</g>`;
    })
    .join('');
  const goal = `<line x1="${x(o.goal).toFixed(1)}" x2="${x(o.goal).toFixed(1)}" y1="${top - 8}" y2="${h - 22}" class="goal"/><text x="${x(o.goal).toFixed(1)}" y="${top - 10}" text-anchor="middle" class="goal-label">${esc(o.goalLabel)}</text>`;
  const style = '<style>.grid{stroke:#e5e7eb}.seeds{fill:#d1d5db;fill-opacity:.6}.err{stroke:#111827;stroke-width:1.5}.goal{stroke:#dc2626;stroke-dasharray:4 3;stroke-width:1.5}.goal-label{fill:#dc2626}</style>';
  return `<svg viewBox="0 0 ${labelW + barW + 30} ${h}" role="img" class="chart">${style}${ticks}${bars}${goal}</svg>`;
}

/** The honest axis: wide enough for the goal and every interval, so nothing is cut off. */
export function honestAxisMax(rows: IntervalRow[], goal: number): number {
  const top = Math.max(goal * 2, ...rows.map((r) => r.wilson95?.[1] ?? 0), ...rows.map((r) => r.seedRange?.[1] ?? 0));
  // A multiple of 4 % (of 20 % past 20 %) puts the quarter ticks on whole percents.
  const step = top * 1.1 > 0.2 ? 0.2 : 0.04;
  return Math.min(1, Math.ceil((top * 1.1) / step) * step);
}

/** The two charts of a report: honest patterns against 2 %, fraud patterns against 95 %. */
const row = (p: PooledPattern): IntervalRow => ({ label: p.pattern, rate: p.rate.rate, wilson95: p.rate.wilson95, seedRange: p.seedRange, ...(p.outsideTarget ? { note: 'not judged' } : {}) });

export function patternCharts(patterns: PooledPattern[]): string {
  const honest = patterns.filter((p) => p.kind === 'honest').map(row);
  const fraud = patterns.filter((p) => p.kind !== 'honest').map(row);
  return (
    `<h3>Honest patterns: conversions flagged or rejected</h3>${intervalChart(honest, { goal: HONEST_FLAGGED_TARGET, goalLabel: 'goal ≤ 2 %', axisMax: honestAxisMax(honest, HONEST_FLAGGED_TARGET), pass: (r) => r <= HONEST_FLAGGED_TARGET })}` +
    `<h3>Fraud patterns: caught (flagged, rejected, refused or duplicate)</h3>${intervalChart(fraud, { goal: CAUGHT_TARGET, goalLabel: 'goal ≥ 95 %', axisMax: 1, pass: (r) => r >= CAUGHT_TARGET })}` +
    '<p class="muted">Bar: the rate on the counts of all seeds pooled; black error bar: its 95 % Wilson score interval; grey band: the lowest to the highest rate of a single seed; dashed red line: the goal. Grey bars are reported and not judged.</p>'
  );
}


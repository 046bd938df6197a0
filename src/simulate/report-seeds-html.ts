import { patternCharts } from './interval-chart.js';
import { esc, PAGE_STYLE, tableHtml } from './report-html.js';
import { range } from './report-seeds-text.js';
import type { MultiSeedReport } from './seeds.js';
import { pct } from './targets.js';

/** reports/fraud-eval.html for several seeds: the pooled rates per pattern with their intervals, one self-contained page. */

export function seedsHtml(r: MultiSeedReport): string {
  const o = r.overall;
  const cards = r.thresholds
    .map((t) => {
      const value = t.id === 'honest_rejected' ? String(t.value) : pct(t.value);
      return `<div class="card ${t.pass ? 'pass' : 'fail'}"><div class="verdict">${t.pass ? 'PASS' : 'FAIL'}</div><div class="value">${esc(value)}</div><div>${esc(t.description)}</div><div class="muted">target ${esc(t.target)}${t.detail ? `<br>${esc(t.detail)}` : ''}</div></div>`;
    })
    .join('');
  const patternRows = r.patterns.map((p) => [
    p.pattern,
    p.kind,
    p.attempts,
    `${p.rate.n}/${p.rate.of}`,
    pct(p.rate.rate),
    range(p.rate.wilson95),
    p.meanOfSeeds === null ? 'n/a' : pct(p.meanOfSeeds),
    range(p.seedRange),
    Object.entries(p.variants)
      .map(([v, x]) => `${v} ${x.n}/${x.of}`)
      .join(', '),
    Object.entries(p.flaggedBy)
      .map(([k, n]) => `${k} ×${n}`)
      .join(', '),
  ]);
  const seedRows = r.perSeed.map((s) => [s.seed, s.traffic.clicks, s.traffic.postbacks, `${s.durationS.toFixed(1)} s`, pct(s.overall.recall.rate), pct(s.overall.honestFlagged.rate, 2), s.overall.honestRejected, s.pass ? 'pass' : 'fail']);
  const line = (name: string, x: { n: number; of: number; rate: number | null; wilson95: [number, number] | null }) => `${name} <b>${pct(x.rate)}</b> (${x.n}/${x.of}, 95 % ${range(x.wilson95)})`;
  const outside = r.patterns.filter((p) => p.outsideTarget).map((p) => `<p class="muted"><b>${esc(p.pattern)}</b> is reported and not judged: ${esc(p.outsideTarget)}.</p>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fraud evaluation, ${esc(r.seeds.length)} seeds</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${PAGE_STYLE}</style></head><body>
<h1>Fraud evaluation over ${esc(r.seeds.length)} seeds</h1>
<p class="muted">Seeds ${esc(r.seeds.join(', '))} · ${esc(r.requestedClicks.toLocaleString('en-US'))} clicks each, every seed on a fresh engine and database · ${esc(r.durationS.toFixed(0))} s of traffic in all · ${esc(r.target)} · started ${esc(r.startedAt)}</p>
<h2>Targets (on the pooled counts)</h2><div class="cards">${cards}</div>
<p>${line('Fraud conversions flagged or rejected (recall)', o.recall)}; ${line('fraud attempts caught with refusals and duplicates', o.attemptsCaught)}. ${line('Honest conversions flagged or rejected', o.honestFlagged)}; <b>${o.honestRejected}</b> honest rejected; ${line('rejected conversions that are fraud', o.rejectedFraudulent)}; ${line('flagged or rejected that are fraud (precision)', o.precision)}.</p>
<h2>Per pattern</h2>${patternCharts(r.patterns)}
${outside.join('')}
${tableHtml(['pattern', 'kind', 'attempts', 'judged', 'pooled rate', '95 % Wilson', 'mean of seeds', 'seed min – max', 'by variant (pooled)', 'flagged or rejected by'], patternRows)}
<h2>Seeds</h2>${tableHtml(['seed', 'clicks', 'postbacks', 'traffic', 'recall', 'honest flagged', 'honest rejected', 'targets'], seedRows)}
<h2>Method</h2><ul>${r.method.map((m) => `<li>${esc(m)}</li>`).join('')}<li>Each seed runs on its own engine process and database. Rates are pooled over the seeds' counts; the 95 % interval is the Wilson score interval on those counts (it treats conversions as independent, which the segment patterns are not quite: the seed range shows how far a single run moves).</li></ul>
${r.errors ? `<p>${r.errors} client errors over the seeds.</p>` : ''}
</body></html>
`;
}

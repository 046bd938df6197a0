import { pct } from './targets.js';
import type { Interval, MultiSeedReport } from './seeds.js';
import { table } from './report-text.js';

/** The pooled results of several seeds as plain-text tables for the terminal. */

export const range = (r: [number, number] | null) => (r ? `${pct(r[0])} – ${pct(r[1])}` : 'n/a');
export const withInterval = (r: Interval) => `${pct(r.rate)} (${r.n}/${r.of}, 95 % ${range(r.wilson95)})`;

export function seedsText(r: MultiSeedReport): string {
  const o = r.overall;
  const out: string[] = [];
  out.push(`Fraud simulation over ${r.seeds.length} seeds (${r.seeds.join(', ')}), ${r.requestedClicks.toLocaleString('en-US')} clicks each, ${r.durationS.toFixed(0)} s of traffic in all, against ${r.target}`);
  out.push('');
  out.push(
    table(
      ['pattern', 'kind', 'judged', 'rate', '95 % Wilson', 'seed min – max', 'target'],
      r.patterns.map((p) => [
        p.pattern,
        p.kind,
        `${p.rate.n}/${p.rate.of}`,
        pct(p.rate.rate),
        range(p.rate.wilson95),
        range(p.seedRange),
        p.outsideTarget ? 'not judged' : p.kind === 'honest' ? 'flagged ≤ 2 %' : 'caught ≥ 95 %',
      ]),
    ),
  );
  out.push('', 'rate: flagged or rejected for honest patterns; flagged, rejected, refused or duplicate for fraud (segment-level ones past their minimum volume).');
  for (const p of r.patterns.filter((x) => x.outsideTarget)) out.push(`${p.pattern} is not judged: ${p.outsideTarget}.`);
  out.push('');
  out.push(`fraud conversions flagged or rejected (recall): ${withInterval(o.recall)}; fraud attempts caught including refusals and duplicates: ${withInterval(o.attemptsCaught)}`);
  out.push(`honest conversions flagged or rejected: ${withInterval(o.honestFlagged)}; honest rejected: ${o.honestRejected}; rejected conversions that are fraud: ${withInterval(o.rejectedFraudulent)}`);
  out.push('');
  for (const t of r.thresholds) {
    const value = t.id === 'honest_rejected' ? String(t.value) : pct(t.value);
    out.push(`${t.pass ? 'PASS' : 'FAIL'}  ${t.description}: ${value} (target ${t.target})${t.detail ? ` [${t.detail}]` : ''}`);
  }
  out.push('');
  for (const s of r.perSeed) {
    out.push(`seed ${s.seed}: ${s.traffic.clicks} clicks, ${s.traffic.postbacks} postbacks in ${s.durationS.toFixed(1)} s; recall ${pct(s.overall.recall.rate)}, honest flagged ${pct(s.overall.honestFlagged.rate, 2)}, ${s.overall.honestRejected} honest rejected${s.errors.length ? `; ${s.errors.length}+ client errors, first: ${s.errors[0]}` : ''}`);
  }
  return out.join('\n');
}

import { pct, type Evaluation } from './evaluate.js';
import type { SimReport } from './report.js';

/** The run's results as plain-text tables for the terminal. */

export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function textReport(r: SimReport): string {
  const e: Evaluation = r.evaluation;
  const o = e.overall;
  const out: string[] = [];
  out.push(`Fraud simulation, seed ${r.seed}: ${r.traffic.clicks.toLocaleString('en-US')} clicks, ${r.traffic.postbacks.toLocaleString('en-US')} postbacks in ${r.durationS.toFixed(1)} s against ${r.target}`);
  out.push('');
  out.push(
    table(
      ['pattern', 'kind', 'attempts', 'refused', 'duplicate', 'accepted', 'flagged', 'rejected', 'caught', 'target rate'],
      e.patterns.map((p) => [
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
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['reason code', 'on honest', 'on fraud', 'precision', 'recall', 'expected on'],
      e.reasons.map((x) => [x.code, x.firedHonest, x.firedFraud, pct(x.precision), pct(x.recall.rate), x.recall.of]),
    ),
  );
  out.push('');
  out.push(
    `overall: precision ${pct(o.precision)} (flagged or rejected conversions that are fraud), recall ${pct(o.recall.rate)} ` +
      `(fraud conversions flagged or rejected: ${o.recall.n}/${o.recall.of}); fraud attempts caught including intake refusals and duplicates ` +
      `${pct(o.attemptsCaught.rate)} (${o.attemptsCaught.n}/${o.attemptsCaught.of})`,
  );
  const by = Object.entries(o.honestFlaggedBy).map(([k, n]) => `${k} ×${n}`).join(', ');
  out.push(`honest: ${o.honestConversions} conversions, ${o.honestFlagged.n} flagged (${pct(o.honestFlagged.rate, 2)}${by ? `: ${by}` : ''}), ${o.honestRejected} rejected, ${o.honestRefused} postbacks refused`);
  if (r.deliveries) {
    const d = r.deliveries;
    out.push(`outbound postbacks: ${d.received} received for ${d.expected} accepted conversions; ${d.repeated} repeated, ${d.unexpected} for conversions not accepted`);
  }
  out.push('');
  for (const t of e.thresholds) {
    const value = t.id === 'honest_rejected' ? String(t.value) : pct(t.value);
    out.push(`${t.pass ? 'PASS' : 'FAIL'}  ${t.description}: ${value} (target ${t.target})${t.detail ? ` [${t.detail}]` : ''}`);
  }
  if (r.errors.length > 0) out.push('', `${r.errors.length} client errors, first: ${r.errors[0]}`);
  return out.join('\n');
}

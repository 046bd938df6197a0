import type { PatternKind } from './plan.js';

/**
 * The issue's targets, judged the same way on one seed's counts and on counts pooled over seeds:
 * every fraud pattern caught ≥ 95 % (per-conversion ones on every attempt, segment-level ones past
 * their rule's minimum volume), every honest pattern flagged ≤ 2 %, no honest conversion rejected,
 * rejected conversions ≥ 99 % fraud. A pattern passes on its point estimate (the pooled rate); the
 * Wilson interval beside it says how sure that is. A pattern with `outsideTarget` is reported and
 * not judged, for the reason it gives.
 */

export type Rate = { n: number; of: number; rate: number | null };
export const rate = (n: number, of: number): Rate => ({ n, of, rate: of === 0 ? null : n / of });

export type Threshold = { id: string; description: string; value: number | null; target: string; pass: boolean; detail?: string };

export type JudgedPattern = { pattern: string; kind: PatternKind; rate: Rate; outsideTarget?: string };

export const CAUGHT_TARGET = 0.95;
export const HONEST_FLAGGED_TARGET = 0.02;
export const REJECTED_FRAUD_TARGET = 0.99;

export const pct = (r: number | null | undefined, digits = 1) => (r === null || r === undefined ? 'n/a' : `${(r * 100).toFixed(digits)} %`);

export function targets(patterns: JudgedPattern[], o: { honestFlagged: Rate; honestRejected: number; rejectedFraudulent: Rate }): Threshold[] {
  const judged = patterns.filter((p) => p.outsideTarget === undefined);
  // Worst first; a fraud pattern with nothing judged fails (nothing shows it is caught), an honest one passes.
  const of = (kind: PatternKind) =>
    judged.filter((p) => p.kind === kind).sort((a, b) => (kind === 'honest' ? (b.rate.rate ?? 0) - (a.rate.rate ?? 0) : (a.rate.rate ?? 0) - (b.rate.rate ?? 0)));
  const list = (ps: JudgedPattern[]) => ps.map((p) => `${p.pattern} ${pct(p.rate.rate)}`).join(', ');
  const caught = (ps: JudgedPattern[]) => ps.every((p) => (p.rate.rate ?? 0) >= CAUGHT_TARGET);
  const perConversion = of('per-conversion');
  const aggregate = of('aggregate');
  const honest = of('honest');
  const outside = patterns.filter((p) => p.outsideTarget !== undefined);
  return [
    { id: 'rejected_fraudulent', description: 'rejected conversions that are fraudulent', value: o.rejectedFraudulent.rate, target: '≥ 99 %', pass: (o.rejectedFraudulent.rate ?? 1) >= REJECTED_FRAUD_TARGET },
    {
      id: 'per_conversion_caught',
      description: 'per-conversion fraud flagged, rejected or refused (worst pattern)',
      value: perConversion[0]?.rate.rate ?? null,
      target: '≥ 95 % each',
      pass: perConversion.length > 0 && caught(perConversion),
      detail: list(perConversion),
    },
    {
      id: 'aggregate_caught',
      description: 'segment-level fraud past minimum volume flagged or rejected (worst pattern)',
      value: aggregate[0]?.rate.rate ?? null,
      target: '≥ 95 % each',
      pass: caught(aggregate),
      detail: list(aggregate) + (outside.length ? `; not judged: ${outside.map((p) => `${p.pattern} ${pct(p.rate.rate)}`).join(', ')}` : ''),
    },
    {
      id: 'honest_patterns_flagged',
      description: 'honest conversions flagged or rejected (worst pattern)',
      value: honest[0]?.rate.rate ?? null,
      target: '≤ 2 % each',
      pass: honest.every((p) => (p.rate.rate ?? 0) <= HONEST_FLAGGED_TARGET),
      detail: list(honest),
    },
    { id: 'honest_flagged', description: 'honest conversions flagged or rejected (all)', value: o.honestFlagged.rate, target: '≤ 2 %', pass: (o.honestFlagged.rate ?? 0) <= HONEST_FLAGGED_TARGET },
    { id: 'honest_rejected', description: 'honest conversions rejected', value: o.honestRejected, target: '0', pass: o.honestRejected === 0 },
  ];
}

import { RULES } from '../fraud/registry.js';
import type { Attempt } from './driver.js';
import type { PatternKind } from './plan.js';
import { pct, rate, targets, type Rate, type Threshold } from './targets.js';

export { pct, type Rate, type Threshold };

/**
 * From what the engine answered to what it means. An attempt is "caught" when it did not become an
 * accepted conversion: refused at intake (a 4xx), recognised as a duplicate, or committed as flagged
 * or rejected. Precision and recall per reason code are over committed conversions: precision is the
 * share of conversions carrying the code that were fraud; recall is the share of the fraud attempts
 * whose pattern should produce the code (plan.ts `expected`) that carry it.
 */

export type Outcome = 'refused' | 'duplicate' | 'accepted' | 'flagged' | 'rejected';
const OUTCOMES: Outcome[] = ['refused', 'duplicate', 'accepted', 'flagged', 'rejected'];

export function outcomeOf(a: Attempt): Outcome {
  if (a.status !== 200) return 'refused';
  if (a.duplicate) return 'duplicate';
  return a.decision ?? 'accepted';
}

const caught = (a: Attempt) => outcomeOf(a) !== 'accepted';
const committed = (a: Attempt) => a.status === 200 && !a.duplicate;
const isFraud = (a: Attempt) => a.label.kind !== 'honest';
const ratio = (n: number, d: number) => (d === 0 ? null : n / d);
const positive = (a: Attempt) => a.decision === 'flagged' || a.decision === 'rejected';

export type PatternStats = {
  pattern: string;
  kind: PatternKind;
  attempts: number;
  outcomes: Record<Outcome, number>;
  refusedBy: Record<string, number>;
  variants: Record<string, Rate>;
  caught: Rate;
  /** What the targets judge: every attempt of a per-conversion pattern; aggregate ones past minimum volume. */
  judged: Rate;
  /** Committed conversions flagged or rejected: for an honest pattern, what the targets judge. */
  flagged: Rate;
  /** Judged per variant (the variant's share of `judged` for fraud, of `flagged` for honest). */
  variantRates: Record<string, Rate>;
  /** The reasons behind each flagged or rejected conversion of the pattern. */
  flaggedBy: Record<string, number>;
  outsideTarget?: string;
};

/** The one rate the targets hold a pattern to. */
export const targetRate = (p: PatternStats): Rate => (p.kind === 'honest' ? p.flagged : p.judged);

export type ReasonStats = { code: string; firedHonest: number; firedFraud: number; precision: number | null; recall: Rate };

export type Evaluation = {
  patterns: PatternStats[];
  reasons: ReasonStats[];
  overall: {
    honestConversions: number;
    fraudConversions: number;
    fraudAttempts: number;
    precision: number | null;
    recall: Rate;
    attemptsCaught: Rate;
    honestFlagged: Rate;
    honestRejected: number;
    honestRefused: number;
    /** The reasons behind each honest conversion flagged: what an analyst approves by hand. */
    honestFlaggedBy: Record<string, number>;
    rejectedFraudulent: Rate;
  };
  thresholds: Threshold[];
  scores: { honest: number[]; fraud: number[] };
  honestCtit: { bucket: string; n: number }[];
};

export function evaluate(attempts: Attempt[], scores: ReadonlyMap<string, number>): Evaluation {
  const patterns = [...new Set(attempts.map((a) => a.label.pattern))].map((p) => patternStats(p, attempts.filter((a) => a.label.pattern === p)));
  const done = attempts.filter(committed);
  const honest = done.filter((a) => !isFraud(a));
  const fraud = done.filter(isFraud);
  const rejected = done.filter((a) => a.decision === 'rejected');
  const fraudAttempts = attempts.filter(isFraud);
  const overall = {
    honestConversions: honest.length,
    fraudConversions: fraud.length,
    fraudAttempts: fraudAttempts.length,
    precision: ratio(fraud.filter(positive).length, done.filter(positive).length),
    recall: rate(fraud.filter(positive).length, fraud.length),
    attemptsCaught: rate(fraudAttempts.filter(caught).length, fraudAttempts.length),
    honestFlagged: rate(honest.filter(positive).length, honest.length),
    honestRejected: honest.filter((a) => a.decision === 'rejected').length,
    honestRefused: attempts.filter((a) => !isFraud(a) && a.status !== 200).length,
    honestFlaggedBy: tally(honest.filter(positive).map((a) => a.reasons.join(' + '))),
    rejectedFraudulent: rate(rejected.filter(isFraud).length, rejected.length),
  };
  return { patterns, reasons: reasonStats(done), overall, thresholds: targets(patterns.map((p) => ({ pattern: p.pattern, kind: p.kind, rate: targetRate(p), ...(p.outsideTarget ? { outsideTarget: p.outsideTarget } : {}) })), overall), scores: histogram(done, scores), honestCtit: ctitBuckets(honest) };
}

function patternStats(pattern: string, list: Attempt[]): PatternStats {
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const refusedBy: Record<string, number> = {};
  const variants: Record<string, Rate> = {};
  for (const a of list) {
    outcomes[outcomeOf(a)]++;
    if (a.status !== 200) refusedBy[`${a.status} ${a.code ?? ''}`.trim()] = (refusedBy[`${a.status} ${a.code ?? ''}`.trim()] ?? 0) + 1;
    const v = (variants[a.label.variant] ??= { n: 0, of: 0, rate: null });
    v.of++;
    if (caught(a)) v.n++;
    v.rate = v.n / v.of;
  }
  const kind = list[0]?.label.kind ?? 'honest';
  const judgedList = kind === 'aggregate' ? list.filter((a) => a.pastMinimum !== false) : list;
  const targetList = kind === 'honest' ? list.filter(committed) : judgedList;
  const targetHit = kind === 'honest' ? positive : caught;
  const variantRates: Record<string, Rate> = {};
  for (const v of Object.keys(variants)) {
    const of = targetList.filter((a) => a.label.variant === v);
    variantRates[v] = rate(of.filter(targetHit).length, of.length);
  }
  const outsideTarget = list[0]?.label.outsideTarget;
  return {
    pattern,
    kind,
    attempts: list.length,
    outcomes,
    refusedBy,
    variants,
    caught: rate(list.filter(caught).length, list.length),
    judged: rate(judgedList.filter(caught).length, judgedList.length),
    flagged: rate(list.filter(committed).filter(positive).length, list.filter(committed).length),
    variantRates,
    flaggedBy: tally(list.filter(committed).filter(positive).map((a) => a.reasons.join(' + '))),
    ...(outsideTarget ? { outsideTarget } : {}),
  };
}

function reasonStats(done: Attempt[]): ReasonStats[] {
  return RULES.map(({ code }) => {
    const carrying = done.filter((a) => a.reasons.includes(code));
    const firedFraud = carrying.filter(isFraud).length;
    // Aggregate rules cannot fire before their minimum volume: recall counts the attempts past it.
    const should = done.filter((a) => isFraud(a) && a.label.expected.includes(code) && a.pastMinimum !== false);
    return {
      code,
      firedHonest: carrying.length - firedFraud,
      firedFraud,
      precision: ratio(firedFraud, carrying.length),
      recall: rate(should.filter((a) => a.reasons.includes(code)).length, should.length),
    };
  });
}

function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}


/** Scores in ten bands (0-9 ... 90-100), honest and fraud apart. */
function histogram(done: Attempt[], scores: ReadonlyMap<string, number>): Evaluation['scores'] {
  const bands = () => Array.from({ length: 10 }, () => 0);
  const out = { honest: bands(), fraud: bands() };
  for (const a of done) {
    const s = a.conversionId ? scores.get(a.conversionId) : undefined;
    if (s === undefined) continue;
    const band = isFraud(a) ? out.fraud : out.honest;
    const i = Math.min(9, Math.floor(s / 10));
    band[i] = (band[i] ?? 0) + 1;
  }
  return out;
}

const CTIT_BUCKETS: [string, number][] = [
  ['< 1 min', 60],
  ['1-10 min', 600],
  ['10-60 min', 3600],
  ['1-6 h', 6 * 3600],
  ['6-24 h', 86_400],
  ['1-7 days', 7 * 86_400],
  ['> 7 days', Infinity],
];

function ctitBuckets(honest: Attempt[]): { bucket: string; n: number }[] {
  const counts = CTIT_BUCKETS.map(([bucket]) => ({ bucket, n: 0 }));
  for (const a of honest) {
    if (a.ctitS === undefined) continue;
    const i = CTIT_BUCKETS.findIndex(([, upper]) => (a.ctitS as number) < upper);
    (counts[i] as { n: number }).n++;
  }
  return counts;
}

import { RULES } from '../fraud/registry.js';
import type { Attempt } from './driver.js';
import type { PatternKind } from './plan.js';

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

export type Rate = { n: number; of: number; rate: number | null };
const rate = (n: number, of: number): Rate => ({ n, of, rate: ratio(n, of) });

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
};

export type ReasonStats = { code: string; firedHonest: number; firedFraud: number; precision: number | null; recall: Rate };

export type Threshold = { id: string; description: string; value: number | null; target: string; pass: boolean; detail?: string };

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
  const positive = (a: Attempt) => a.decision === 'flagged' || a.decision === 'rejected';
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
  return { patterns, reasons: reasonStats(done), overall, thresholds: thresholds(patterns, overall), scores: histogram(done, scores), honestCtit: ctitBuckets(honest) };
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
  return {
    pattern,
    kind,
    attempts: list.length,
    outcomes,
    refusedBy,
    variants,
    caught: rate(list.filter(caught).length, list.length),
    judged: rate(judgedList.filter(caught).length, judgedList.length),
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

function thresholds(patterns: PatternStats[], o: Evaluation['overall']): Threshold[] {
  const worst = (kind: PatternKind) => patterns.filter((p) => p.kind === kind).sort((a, b) => (a.judged.rate ?? 1) - (b.judged.rate ?? 1));
  const perConversion = worst('per-conversion');
  const aggregate = worst('aggregate');
  const list = (ps: PatternStats[]) => ps.map((p) => `${p.pattern} ${pct(p.judged.rate)}`).join(', ');
  return [
    { id: 'rejected_fraudulent', description: 'rejected conversions that are fraudulent', value: o.rejectedFraudulent.rate, target: '≥ 99 %', pass: (o.rejectedFraudulent.rate ?? 1) >= 0.99 },
    {
      id: 'per_conversion_caught',
      description: 'per-conversion fraud flagged, rejected or refused (worst pattern)',
      value: perConversion[0]?.judged.rate ?? null,
      target: '≥ 95 % each',
      pass: perConversion.every((p) => (p.judged.rate ?? 0) >= 0.95),
      detail: list(perConversion),
    },
    {
      id: 'aggregate_caught',
      description: 'aggregate fraud past minimum volume flagged or rejected (worst pattern)',
      value: aggregate[0]?.judged.rate ?? null,
      target: '≥ 80 % each',
      pass: aggregate.every((p) => (p.judged.rate ?? 0) >= 0.8),
      detail: list(aggregate),
    },
    { id: 'honest_flagged', description: 'honest conversions flagged (or rejected)', value: o.honestFlagged.rate, target: '≤ 3 %', pass: (o.honestFlagged.rate ?? 0) <= 0.03 },
    { id: 'honest_rejected', description: 'honest conversions rejected', value: o.honestRejected, target: '0', pass: o.honestRejected === 0 },
  ];
}

function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

export const pct = (r: number | null | undefined, digits = 1) => (r === null || r === undefined ? 'n/a' : `${(r * 100).toFixed(digits)} %`);

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

import { wilsonInterval } from '../stats/wilson.js';
import { targetRate, type Outcome, type PatternStats } from './evaluate.js';
import type { PatternKind } from './plan.js';
import type { SimReport } from './report.js';
import { rate, targets, type Rate, type Threshold } from './targets.js';

/**
 * Several seeds, each run on a fresh engine and database, pooled: per pattern the rate the targets
 * judge (caught for fraud, flagged for honest) over all seeds' counts, its 95 % Wilson score interval
 * on those pooled counts, and the lowest and highest per-seed rate (how much one run moves). The
 * targets are judged on the pooled counts.
 */

/** The pooled rate's Wilson interval (src/stats/wilson.ts, shared with the rule-quality report), as the report's [low, high]. */
export function wilson(n: number, of: number): [number, number] | null {
  const i = wilsonInterval(n, of);
  return i && [i.low, i.high];
}

export type Interval = Rate & { wilson95: [number, number] | null };
export const interval = (r: Rate): Interval => ({ ...r, wilson95: wilson(r.n, r.of) });

export type PooledPattern = {
  pattern: string;
  kind: PatternKind;
  outsideTarget?: string;
  /** Seeds in which the pattern had anything to judge. */
  seeds: number;
  attempts: number;
  outcomes: Record<Outcome, number>;
  /** The targets' rate (caught for fraud past minimum volume, flagged for honest) on pooled counts. */
  rate: Interval;
  meanOfSeeds: number | null;
  seedRange: [number, number] | null;
  variants: Record<string, Interval>;
  flaggedBy: Record<string, number>;
};

type Overall = SimReport['evaluation']['overall'];

export type MultiSeedReport = {
  seeds: number[];
  requestedClicks: number;
  startedAt: string;
  durationS: number;
  target: string;
  method: string[];
  patterns: PooledPattern[];
  overall: {
    honestConversions: number;
    fraudConversions: number;
    recall: Interval;
    attemptsCaught: Interval;
    precision: Interval;
    honestFlagged: Interval;
    honestRejected: number;
    rejectedFraudulent: Interval;
  };
  thresholds: Threshold[];
  perSeed: { seed: number; durationS: number; traffic: SimReport['traffic']; overall: Overall; rates: Record<string, Rate>; pass: boolean; errors: string[] }[];
  errors: number;
};

/** `--seeds`: a count (that many seeds from `seed` on) or a comma-separated list. */
export function parseSeeds(seeds: string | undefined, seed: number): number[] {
  if (seeds === undefined) return [seed];
  if (/^\d+$/.test(seeds)) {
    const count = Number(seeds);
    if (count < 1 || count > 100) throw new Error(`--seeds N runs 1 to 100 seeds, got ${count}`);
    return Array.from({ length: count }, (_, i) => seed + i);
  }
  const list = seeds.split(',').map((s) => s.trim());
  if (list.length < 2 || list.some((s) => !/^\d+$/.test(s))) throw new Error(`--seeds takes a count or a comma-separated list of whole numbers, got "${seeds}"`);
  const unique = [...new Set(list.map(Number))];
  if (unique.length !== list.length) throw new Error(`--seeds lists a seed twice: "${seeds}"`);
  return unique;
}

const sum = (rs: Rate[]): Rate => rate(rs.reduce((s, r) => s + r.n, 0), rs.reduce((s, r) => s + r.of, 0));

function pool(pattern: string, stats: PatternStats[]): PooledPattern {
  const first = stats[0] as PatternStats;
  const rates = stats.map(targetRate);
  const perSeed = rates.map((r) => r.rate).filter((r): r is number => r !== null);
  const outcomes = { ...first.outcomes };
  for (const s of stats.slice(1)) for (const k of Object.keys(outcomes) as Outcome[]) outcomes[k] += s.outcomes[k];
  const variantNames = [...new Set(stats.flatMap((s) => Object.keys(s.variantRates)))].sort();
  return {
    pattern,
    kind: first.kind,
    ...(first.outsideTarget ? { outsideTarget: first.outsideTarget } : {}),
    seeds: perSeed.length,
    attempts: stats.reduce((s, p) => s + p.attempts, 0),
    outcomes,
    rate: interval(sum(rates)),
    meanOfSeeds: perSeed.length ? perSeed.reduce((a, b) => a + b, 0) / perSeed.length : null,
    seedRange: perSeed.length ? [Math.min(...perSeed), Math.max(...perSeed)] : null,
    flaggedBy: addTallies(stats.map((s) => s.flaggedBy)),
    variants: Object.fromEntries(variantNames.map((v) => [v, interval(sum(stats.map((s) => s.variantRates[v]).filter((r): r is Rate => r !== undefined)))])),
  };
}

function addTallies(tallies: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tallies) for (const [k, n] of Object.entries(t)) out[k] = (out[k] ?? 0) + n;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

const ORDER: PatternKind[] = ['honest', 'per-conversion', 'aggregate'];

export function poolSeeds(reports: SimReport[]): MultiSeedReport {
  const names = [...new Set(reports.flatMap((r) => r.evaluation.patterns.map((p) => p.pattern)))];
  const patterns = names
    .map((name) => pool(name, reports.flatMap((r) => r.evaluation.patterns.filter((p) => p.pattern === name))))
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind) || a.pattern.localeCompare(b.pattern));
  const all = reports.map((r) => r.evaluation.overall);
  const recall = sum(all.map((o) => o.recall));
  const honestFlagged = sum(all.map((o) => o.honestFlagged));
  const overall = {
    honestConversions: all.reduce((s, o) => s + o.honestConversions, 0),
    fraudConversions: all.reduce((s, o) => s + o.fraudConversions, 0),
    recall: interval(recall),
    attemptsCaught: interval(sum(all.map((o) => o.attemptsCaught))),
    // Flagged or rejected conversions that are fraud: the fraud ones are recall's n, the rest honest.
    precision: interval(rate(recall.n, recall.n + honestFlagged.n)),
    honestFlagged: interval(honestFlagged),
    honestRejected: all.reduce((s, o) => s + o.honestRejected, 0),
    rejectedFraudulent: interval(sum(all.map((o) => o.rejectedFraudulent))),
  };
  const judged = patterns.map((p) => ({ pattern: p.pattern, kind: p.kind, rate: p.rate, ...(p.outsideTarget ? { outsideTarget: p.outsideTarget } : {}) }));
  return {
    seeds: reports.map((r) => r.seed),
    requestedClicks: reports[0]?.requestedClicks ?? 0,
    startedAt: reports[0]?.startedAt ?? new Date(0).toISOString(),
    durationS: reports.reduce((s, r) => s + r.durationS, 0),
    target: reports[0]?.target ?? '',
    method: reports[0]?.method ?? [],
    patterns,
    overall,
    thresholds: targets(judged, overall),
    perSeed: reports.map((r) => ({
      seed: r.seed,
      durationS: r.durationS,
      traffic: r.traffic,
      overall: r.evaluation.overall,
      rates: Object.fromEntries(r.evaluation.patterns.map((p) => [p.pattern, targetRate(p)])),
      pass: r.evaluation.thresholds.every((t) => t.pass) && r.errors.length === 0,
      errors: r.errors.slice(0, 5),
    })),
    errors: reports.reduce((s, r) => s + r.errors.length, 0),
  };
}

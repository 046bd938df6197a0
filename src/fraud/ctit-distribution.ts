/**
 * Click-to-conversion time (CTIT) as a distribution: log-spaced buckets, and the comparison of one
 * source's histogram with the rest of its offer that `click_flood` makes (rules/click-flood.ts).
 *
 * Honest traffic converts mostly within minutes to hours of its click; click flooding (spraying
 * clicks so that some are the last click before organic conversions) attributes conversions to
 * clicks the user never acted on, so the flooder's CTIT spreads flat across the whole look-back.
 * Log-spaced buckets show both shapes with few counters: fine steps where honest traffic lives,
 * coarse ones in the tail where a flood lives.
 *
 * The test is the two-sample Kolmogorov–Smirnov statistic, one-sided: D+ is the largest amount by
 * which the rest's cumulative share exceeds the segment's at a bucket edge, i.e. how much later the
 * segment converts. Its asymptotic tail P(D+ > d) ≈ exp(-2 d² nm / (n + m)) gives the critical value
 * d = sqrt(-ln(α) (n + m) / (2 n m)). On binned data the statistic can only be smaller than on the
 * exact times (fewer points at which the two functions are compared), so the test is conservative:
 * honest sources fire by chance at most at rate α. One-sided because a source converting *sooner*
 * than the rest is not flooding (click injection is ctit_too_short's), and a one-sided test has more
 * power for the direction that matters.
 */

/** Upper edges (exclusive) of the buckets, in seconds; the last bucket is everything from 7 days. */
export const CTIT_EDGES_S = [10, 30, 60, 180, 600, 1_800, 3_600, 10_800, 21_600, 43_200, 86_400, 259_200, 604_800] as const;
export const CTIT_BUCKETS = CTIT_EDGES_S.length + 1;
export const CTIT_BUCKET_LABELS: readonly string[] = [
  '<10s',
  '10-30s',
  '30s-1m',
  '1-3m',
  '3-10m',
  '10-30m',
  '30m-1h',
  '1-3h',
  '3-6h',
  '6-12h',
  '12h-1d',
  '1-3d',
  '3-7d',
  '>7d',
];

export type Histogram = readonly number[];

/** The bucket of a click-to-conversion time; a click stamped slightly in the future counts as instant. */
export function ctitBucket(ctitS: number): number {
  let i = 0;
  while (i < CTIT_EDGES_S.length && ctitS >= (CTIT_EDGES_S[i] as number)) i++;
  return i;
}

export function emptyHistogram(): number[] {
  return new Array<number>(CTIT_BUCKETS).fill(0);
}

export function total(h: Histogram): number {
  let n = 0;
  for (const c of h) n += c;
  return n;
}

/** The offer without the segment, bucket by bucket (never below zero, should counters disagree). */
export function without(offer: Histogram, segment: Histogram): number[] {
  return offer.map((c, i) => Math.max(0, c - (segment[i] ?? 0)));
}

/** Conversions `fromS` (a bucket edge) or more after their click. */
export function tailCount(h: Histogram, fromS: number): number {
  const first = ctitBucket(fromS);
  let n = 0;
  for (let i = first; i < h.length; i++) n += h[i] as number;
  return n;
}

/** One-sided two-sample KS statistic: how far the rest's cumulative share runs ahead of the segment's. */
export function laterBy(segment: Histogram, rest: Histogram): { d: number; edgeS: number | undefined } {
  const n = total(segment);
  const m = total(rest);
  let seg = 0;
  let oth = 0;
  let d = 0;
  let edgeS: number | undefined;
  if (n === 0 || m === 0) return { d, edgeS };
  // The last bucket's cumulative share is 1 on both sides, so only the inner edges can differ.
  for (let i = 0; i < CTIT_EDGES_S.length; i++) {
    seg += segment[i] ?? 0;
    oth += rest[i] ?? 0;
    const gap = oth / m - seg / n;
    if (gap > d) {
      d = gap;
      edgeS = CTIT_EDGES_S[i];
    }
  }
  return { d, edgeS };
}

/** The D+ above which two samples of sizes n and m differ at significance level alpha. */
export function criticalLaterBy(n: number, m: number, alpha: number): number {
  return Math.sqrt((-Math.log(alpha) * (n + m)) / (2 * n * m));
}

export type DistributionSettings = {
  alpha: number;
  tailFromS: number;
  minTailShare: number;
  minTailLift: number;
  minConversions: number;
  minBaselineConversions: number;
  strongTailShare: number;
};

export type Comparison =
  | { judged: false; conversions: number; restConversions: number }
  | {
      judged: true;
      fired: boolean;
      strong: boolean;
      conversions: number;
      restConversions: number;
      d: number;
      critical: number;
      /** Where the gap is largest: the bucket edge (s) at which the segment lags the rest most. */
      edgeS: number | undefined;
      tailShare: number;
      restTailShare: number;
      tailLift: number;
    };

/**
 * The segment against the rest of its offer. Fires when the segment converts significantly later
 * (D+ above its critical value) and substantially so: at least `minTailShare` of its conversions
 * come `tailFromS` or more after the click, and that share is `minTailLift` times the rest's.
 * Strong when the tail is the majority form (`strongTailShare`), which honest sources never are.
 */
export function compare(segment: Histogram, rest: Histogram, s: DistributionSettings): Comparison {
  const conversions = total(segment);
  const restConversions = total(rest);
  if (conversions < s.minConversions || restConversions < s.minBaselineConversions) return { judged: false, conversions, restConversions };
  const { d, edgeS } = laterBy(segment, rest);
  const critical = criticalLaterBy(conversions, restConversions, s.alpha);
  const tailShare = tailCount(segment, s.tailFromS) / conversions;
  const restTail = tailCount(rest, s.tailFromS);
  const restTailShare = restTail / restConversions;
  // Half a conversion when the rest has none in the tail: a share of exactly 0 would make any tail an infinite lift.
  const tailLift = tailShare / (Math.max(restTail, 0.5) / restConversions);
  const fired = d > critical && tailShare >= s.minTailShare && tailLift >= s.minTailLift;
  return { judged: true, fired, strong: fired && tailShare >= s.strongTailShare, conversions, restConversions, d, critical, edgeS, tailShare, restTailShare, tailLift };
}

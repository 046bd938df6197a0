/**
 * Sums of click counters whose buckets have closed, kept by each node so a postback sends Redis only
 * the bucket still filling. The conversion-rate baselines read an offer's seven day buckets and a
 * segment's 25 hour buckets: most of the ~40 keys each postback passed to the scoring script, which
 * encoding, sending and summing cost on both sides. A closed bucket stops changing once the last
 * node has flushed its buffered clicks into it (CLICK_FLUSH_MS after the bucket ends, plus the
 * write), so its sum is kept only when read at least SETTLE_MS after it closed (by the reading node's
 * clock: nodes' clocks must agree to well within that), and reused until the next bucket closes (the
 * run of closed buckets then changes, and so does the cache key). The CTIT histograms' closed days
 * are kept the same way, as arrays (a day's histogram stops changing when the day ends: conversions
 * are counted at their own time).
 */

export const SETTLE_MS = 5_000;
const MAX_ENTRIES = 50_000;

/** One counter group of a plan: its bucket keys, oldest first, the last one still filling. */
export type BucketRun = { keys: readonly string[]; currentFrom: number };

export class ClosedBucketSums<T = number> {
  private readonly sums = new Map<string, T>();

  /** `none`: the sum of no closed buckets (a run of one bucket). Never modified by callers. */
  constructor(private readonly none: T = 0 as T) {}

  /** The closed buckets' sum when known, else undefined (then they must be read). */
  get(run: BucketRun): T | undefined {
    if (run.keys.length < 2) return this.none;
    return this.sums.get(cacheKey(run));
  }

  /** Keeps a sum read `at` (the observation's time), if its buckets have settled by then. */
  remember(run: BucketRun, sum: T, at: number): void {
    if (run.keys.length < 2 || at - run.currentFrom < SETTLE_MS) return;
    if (this.sums.size >= MAX_ENTRIES) this.sums.clear();
    this.sums.set(cacheKey(run), sum);
  }
}

/** First and last closed bucket: the same run of closed buckets, whatever the window's partial hour. */
function cacheKey(run: BucketRun): string {
  return `${run.keys[0]}|${run.keys[run.keys.length - 2]}`;
}

import { emptyHistogram } from './ctit-distribution.js';
import type { AddressCounts, ClickObservation, ConversionCounts, ConversionObservation, FraudState, PublisherSpread } from './state.js';
import { clickIncrements, type CohortPlan, OFFER_RETENTION_MS, planObservation, WINDOW_RETENTION_MS } from './state-keys.js';

/**
 * The state in process memory for a single node: the same key plan and the same commands as the
 * Redis implementation (state-redis.ts), executed on maps. Time is the observation's own (`at`), not
 * the wall clock, so expiry behaves identically when a test or a simulation drives the clock.
 */

/** Expired keys are swept at most this often (of observed time), bounding memory without a timer. */
const SWEEP_EVERY_MS = 60_000;

/** A number[] is a CTIT histogram (a Redis hash of bucket -> count); a Map a hash of field -> count. */
type Entry = { expiresAt: number; value: TimeSet | Set<string> | number | number[] | Map<string, number> };

export class MemoryFraudState implements FraudState {
  readonly kind = 'memory';
  private readonly prefix: string;
  private readonly keys = new Map<string, Entry>();
  private lastSweep = 0;

  constructor(opts: { prefix: string }) {
    this.prefix = opts.prefix;
  }

  /** Keys currently held (expired ones may linger until the next sweep). */
  get size(): number {
    return this.keys.size;
  }

  async observe(obs: ConversionObservation): Promise<ConversionCounts> {
    const plan = planObservation(this.prefix, obs);
    const now = plan.at;
    this.sweep(now);

    const addresses = plan.addresses.map((a): AddressCounts => {
      const set = this.zset(a.zset, now);
      set.add(plan.member, now);
      set.removeBelow(plan.addressCutoff);
      this.expire(a.zset, now + WINDOW_RETENTION_MS);
      const counts: AddressCounts = { key: a.key, conversions: set.countFrom(plan.addressFrom), clicks: this.sumCounters(a.clickKeys, now) };
      if (a.publisherKeys) counts.spread = this.spread(a.publisherKeys, now);
      return counts;
    });

    const clickSet = this.set(plan.click.set, now);
    clickSet.add(plan.member);
    this.expire(plan.click.set, now + plan.click.ttlMs);

    const o = plan.offer;
    const offer = this.zset(o.zset, now);
    const fresh = offer.add(plan.member, now);
    offer.removeBelow(o.cutoff);
    this.expire(o.zset, now + OFFER_RETENTION_MS);

    const segment = plan.segment && this.cohort(plan.segment, plan.member, now);
    const publisher = plan.publisher && this.cohort(plan.publisher, plan.member, now);

    let ctit: ConversionCounts['ctit'];
    const h = plan.ctit;
    if (h) {
      const level = (days: readonly string[]) => {
        if (fresh) {
          const today = days[days.length - 1] as string;
          const counts = this.histogram(today, now);
          counts[h.bucket] = (counts[h.bucket] ?? 0) + 1;
          this.expire(today, now + OFFER_RETENTION_MS);
        }
        return this.sumHistograms(days, now);
      };
      ctit = { offer: level(h.offerDays), publisher: level(h.publisherDays), segment: level(h.segmentDays) };
    }

    return {
      addresses,
      clickConversions: clickSet.size,
      offerToday: offer.countFrom(o.todayFrom),
      offerBaseline: { conversions: offer.countFrom(o.baselineFrom), clicks: this.sumCounters(o.dayKeys, now) },
      segment,
      publisher,
      ctit,
    };
  }

  /** A click cohort (segment or publisher): the conversion joins at its click's time, once per member. */
  private cohort(c: CohortPlan, member: string, now: number): { conversions: number; clicks: number } {
    const set = this.zset(c.zset, now);
    set.add(member, c.score);
    set.removeBelow(c.cutoff);
    this.expire(c.zset, now + WINDOW_RETENTION_MS);
    return { conversions: set.countFrom(c.from), clicks: this.sumCounters(c.clickKeys, now) };
  }

  recordClick(click: ClickObservation): void {
    const now = click.at.getTime();
    for (const inc of clickIncrements(this.prefix, click)) {
      const current = this.live(inc.key, now);
      if (inc.field !== undefined) {
        const hash = current?.value instanceof Map ? current.value : new Map<string, number>();
        hash.set(inc.field, (hash.get(inc.field) ?? 0) + 1);
        this.keys.set(inc.key, { value: hash, expiresAt: now + inc.ttlMs });
      } else if (current && typeof current.value === 'number') {
        current.value++;
        current.expiresAt = now + inc.ttlMs;
      } else {
        this.keys.set(inc.key, { value: 1, expiresAt: now + inc.ttlMs });
      }
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.keys.clear();
  }

  private live(key: string, now: number): Entry | undefined {
    const entry = this.keys.get(key);
    if (entry && entry.expiresAt <= now) {
      this.keys.delete(key);
      return undefined;
    }
    return entry;
  }

  private zset(key: string, now: number): TimeSet {
    const entry = this.live(key, now);
    if (entry?.value instanceof TimeSet) return entry.value;
    const value = new TimeSet();
    this.keys.set(key, { value, expiresAt: Number.POSITIVE_INFINITY });
    return value;
  }

  private set(key: string, now: number): Set<string> {
    const entry = this.live(key, now);
    if (entry?.value instanceof Set) return entry.value;
    const value = new Set<string>();
    this.keys.set(key, { value, expiresAt: Number.POSITIVE_INFINITY });
    return value;
  }

  private histogram(key: string, now: number): number[] {
    const entry = this.live(key, now);
    if (Array.isArray(entry?.value)) return entry.value;
    const value = emptyHistogram();
    this.keys.set(key, { value, expiresAt: Number.POSITIVE_INFINITY });
    return value;
  }

  private sumHistograms(keys: readonly string[], now: number): number[] {
    const sum = emptyHistogram();
    for (const key of keys) {
      const value = this.live(key, now)?.value;
      if (Array.isArray(value)) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (value[i] ?? 0);
    }
    return sum;
  }

  /** The hashes' fields summed across buckets: how many publishers, and the clicks of the largest. */
  private spread(keys: readonly string[], now: number): PublisherSpread {
    const clicks = new Map<string, number>();
    let top = 0;
    for (const key of keys) {
      const value = this.live(key, now)?.value;
      if (!(value instanceof Map)) continue;
      for (const [publisher, n] of value) {
        const sum = (clicks.get(publisher) ?? 0) + n;
        clicks.set(publisher, sum);
        if (sum > top) top = sum;
      }
    }
    return { publishers: clicks.size, topPublisherClicks: top };
  }

  private expire(key: string, at: number): void {
    const entry = this.keys.get(key);
    if (entry) entry.expiresAt = at;
  }

  private sumCounters(keys: readonly string[], now: number): number {
    let total = 0;
    for (const key of keys) {
      const value = this.live(key, now)?.value;
      if (typeof value === 'number') total += value;
    }
    return total;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [key, entry] of this.keys) if (entry.expiresAt <= now) this.keys.delete(key);
  }
}

/**
 * A sorted set of members scored by time, like a Redis ZSET restricted to what the rules use. Times
 * arrive nearly in order, so inserts are appends. Trimmed members are skipped by moving `head`, and
 * the array is compacted only once they are half of it: cutting the front on every postback moved
 * the whole array (an offer's eight days of conversions) each time.
 */
export class TimeSet {
  private readonly scores = new Map<string, number>();
  private entries: { t: number; member: string }[] = [];
  private head = 0;

  get size(): number {
    return this.entries.length - this.head;
  }

  /** ZADD NX: a member already present keeps its first time. */
  add(member: string, t: number): boolean {
    if (this.scores.has(member)) return false;
    this.scores.set(member, t);
    const i = this.upperBound(t);
    if (i === this.entries.length) this.entries.push({ t, member });
    else this.entries.splice(i, 0, { t, member });
    return true;
  }

  /** ZREMRANGEBYSCORE -inf (t: drops members strictly older than t. */
  removeBelow(t: number): void {
    const end = this.lowerBound(t);
    if (end === this.head) return;
    for (let i = this.head; i < end; i++) this.scores.delete((this.entries[i] as { member: string }).member);
    this.head = end;
    if (this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** ZCOUNT t +inf. */
  countFrom(t: number): number {
    return this.entries.length - this.lowerBound(t);
  }

  private lowerBound(t: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.entries[mid] as { t: number }).t < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private upperBound(t: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.entries[mid] as { t: number }).t <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

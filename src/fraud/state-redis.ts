import { hashTag, isCluster, type RedisClient } from '../state/redis.js';
import type { AddressCounts, ClickObservation, ConversionCounts, ConversionObservation, FraudState, StateErrorSink } from './state.js';
import { ClosedBucketSums, type BucketRun } from './closed-buckets.js';
import { CTIT_BUCKETS, emptyHistogram } from './ctit-distribution.js';
import { clickIncrements, clusterTag, HOUR_MS, OFFER_RETENTION_MS, planObservation, untagged, WINDOW_RETENTION_MS, type KeyTag } from './state-keys.js';
import { encodePlan, runObserveScript } from './state-redis-script.js';

/**
 * The state in Redis, shared by every node. One conversion is one script (state-redis-script.ts):
 * its writes (ZADD NX, SADD) and the reads that follow them execute atomically in one round trip, so
 * two nodes scoring at once each see the other's conversion or not, never half of it. Keys expire on
 * their own (PEXPIRE on every write). On a Redis Cluster the keys carry hash tags (state-keys.ts)
 * and the script runs once per family (address, click, offer), all at once: each part is atomic on
 * its shard, and the replies read together are the same counts.
 *
 * Clicks are counted in a local buffer flushed every CLICK_FLUSH_MS as INCRBY per key: the click
 * redirect never waits on Redis, and a busy offer costs one command per flush instead of one per
 * click. They feed rate baselines, where a quarter second of lag and, on a crash, a quarter second
 * of lost clicks do not matter.
 */

export const CLICK_FLUSH_MS = 250;
/** Beyond this many distinct buffered keys (Redis unreachable for long) new clicks are not counted. */
const MAX_BUFFERED_KEYS = 100_000;

type Command = [string, ...(string | number)[]];

export class RedisFraudState implements FraudState {
  readonly kind = 'redis';
  private readonly prefix: string;
  private readonly onError: StateErrorSink;
  /** Hash tags and one script call per family on a Redis Cluster; plain names and one call on one Redis. */
  private readonly cluster: boolean;
  private readonly tag: KeyTag;
  /** Keyed by the key, or key and hash field joined by a newline (which no key contains: sub1 is URL-encoded). */
  private buffered = new Map<string, { key: string; field: string | undefined; n: number; ttlMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Per node: a user address converts rarely, so only the offer, segment and publisher baselines are kept. */
  private readonly closedSums = new ClosedBucketSums();
  /** The CTIT histograms' closed days per level (offer, publisher, segment), likewise. */
  private readonly closedHistograms = new ClosedBucketSums<readonly number[]>(emptyHistogram());

  constructor(private readonly redis: RedisClient, opts: { prefix: string; onError: StateErrorSink }) {
    this.prefix = opts.prefix;
    this.onError = opts.onError;
    this.cluster = isCluster(redis);
    this.tag = this.cluster ? clusterTag : untagged;
  }

  async observe(obs: ConversionObservation): Promise<ConversionCounts> {
    const plan = planObservation(this.prefix, obs, this.tag);
    const offerRun: BucketRun = { keys: plan.offer.dayKeys, currentFrom: plan.offer.todayFrom };
    // Both cohorts or neither (planObservation plans them together; the script reads them as a pair).
    const cohorts = plan.segment && plan.publisher ? { segment: plan.segment, publisher: plan.publisher } : undefined;
    const segmentRun: BucketRun | undefined = cohorts && { keys: cohorts.segment.clickKeys, currentFrom: startOfHour(plan.at) };
    const publisherRun: BucketRun | undefined = cohorts && { keys: cohorts.publisher.clickKeys, currentFrom: startOfHour(plan.at) };
    const offerClosed = this.closedSums.get(offerRun);
    const segmentClosed = segmentRun && this.closedSums.get(segmentRun);
    const publisherClosed = publisherRun && this.closedSums.get(publisherRun);
    const pc = plan.ctit;
    const histogramRuns: BucketRun[] = pc
      ? [pc.offerDays, pc.publisherDays, pc.segmentDays].map((keys) => ({ keys, currentFrom: plan.offer.todayFrom }))
      : [];
    const histogramsClosed = histogramRuns.map((run) => this.closedHistograms.get(run));
    const unknown = (i: number) => histogramsClosed[i] === undefined;
    const calls = encodePlan(
      plan,
      { address: WINDOW_RETENTION_MS, offer: OFFER_RETENTION_MS, segment: WINDOW_RETENTION_MS, ctit: OFFER_RETENTION_MS },
      { offer: offerClosed === undefined, segment: segmentClosed === undefined, publisher: publisherClosed === undefined, ctit: [unknown(0), unknown(1), unknown(2)] },
      this.cluster,
    );
    const reply = await runObserveScript(this.redis, calls);
    let i = 0;
    const next = (): number => {
      const v = reply[i++];
      if (typeof v !== 'number') throw new Error('the fraud state script returned a malformed reply');
      return v;
    };
    /** A counter group's clicks: the closed buckets' sum (read now, or kept from before) plus the current bucket. */
    const clicks = (run: BucketRun | undefined, kept: number | undefined): number => {
      if (kept !== undefined) return kept + next();
      const closed = next();
      const current = next();
      if (run) this.closedSums.remember(run, closed, plan.at);
      return closed + current;
    };
    const addresses = plan.addresses.map((a): AddressCounts => {
      const counts: AddressCounts = { key: a.key, conversions: next(), clicks: clicks(undefined, undefined) };
      if (a.publisherKeys) counts.spread = { publishers: next(), topPublisherClicks: next() };
      return counts;
    });
    const clickConversions = next();
    const offerToday = next();
    const offerBaseline = { conversions: next(), clicks: clicks(offerRun, offerClosed) };
    const segment = cohorts ? { conversions: next(), clicks: clicks(segmentRun, segmentClosed) } : undefined;
    const publisher = cohorts ? { conversions: next(), clicks: clicks(publisherRun, publisherClosed) } : undefined;
    /** A level's histogram: its closed days (read now, or kept from before) plus today's. */
    const histogram = (level: number): number[] => {
      let base = histogramsClosed[level];
      if (base === undefined) {
        base = Array.from({ length: CTIT_BUCKETS }, next);
        this.closedHistograms.remember(histogramRuns[level] as BucketRun, base, plan.at);
      }
      const sum = new Array<number>(CTIT_BUCKETS);
      for (let b = 0; b < CTIT_BUCKETS; b++) sum[b] = next() + (base[b] ?? 0);
      return sum;
    };
    const ctit = pc ? { offer: histogram(0), publisher: histogram(1), segment: histogram(2) } : undefined;
    return { addresses, clickConversions, offerToday, offerBaseline, segment, publisher, ctit };
  }

  recordClick(click: ClickObservation): void {
    try {
      for (const inc of clickIncrements(this.prefix, click, this.tag)) {
        const id = inc.field === undefined ? inc.key : `${inc.key}\n${inc.field}`;
        const entry = this.buffered.get(id);
        if (entry) entry.n++;
        else if (this.buffered.size < MAX_BUFFERED_KEYS) this.buffered.set(id, { key: inc.key, field: inc.field, n: 1, ttlMs: inc.ttlMs });
      }
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, CLICK_FLUSH_MS).unref();
    } catch (err) {
      this.onError('click', err);
    }
  }

  flush(): Promise<void> {
    // Flushes run one after another so a slow one cannot be overtaken and reorder expiries.
    this.flushing = this.flushing.then(() => this.flushNow());
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    if (this.buffered.size === 0) return;
    const batch = this.buffered;
    this.buffered = new Map();
    const cmds: Command[] = [];
    const expiries = new Map<string, number>();
    for (const { key, field, n, ttlMs } of batch.values()) {
      cmds.push(field === undefined ? ['incrby', key, n] : ['hincrby', key, field, n]);
      expiries.set(key, ttlMs);
    }
    for (const [key, ttlMs] of expiries) cmds.push(['pexpire', key, ttlMs]);
    // A transaction may only name keys of one slot on a Redis Cluster: one per hash tag there.
    const groups = this.cluster ? groupByTag(cmds) : [cmds];
    const errors = await Promise.all(
      groups.map(async (group) => {
        try {
          const results = await this.redis.multi(group).exec();
          const failed = results?.find(([err]) => err)?.[0];
          if (!results || failed) throw failed ?? new Error('the Redis transaction was discarded');
          return undefined;
        } catch (err) {
          return err ?? new Error('the Redis transaction failed');
        }
      }),
    );
    // Dropped, not retried: a retry after a lost reply would count the same clicks twice. One error per flush.
    const failed = errors.find((e) => e !== undefined);
    if (failed !== undefined) this.onError('click', failed);
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

function startOfHour(at: number): number {
  return Math.floor(at / HOUR_MS) * HOUR_MS;
}

function groupByTag(cmds: readonly Command[]): Command[][] {
  const groups = new Map<string, Command[]>();
  for (const cmd of cmds) {
    const tag = hashTag(String(cmd[1]));
    const group = groups.get(tag);
    if (group) group.push(cmd);
    else groups.set(tag, [cmd]);
  }
  return [...groups.values()];
}

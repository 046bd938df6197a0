import { countKey } from './addresses.js';
import { ctitBucket } from './ctit-distribution.js';
import type { ClickObservation, ConversionObservation } from './state.js';

/**
 * Where the scoring state lives: one key plan shared by the Redis and the memory implementation, so
 * both count exactly the same things. Conversions are members of sorted sets scored by the time
 * they were first seen (ZADD NX), keyed `advertiserId:txid`, so a retried or re-scored postback is
 * counted once and keeps its first time. Clicks are plain counters in hour or day buckets.
 *
 *   <p>addr:<address>                    zset  conversions from one user address (all offers)
 *   <p>addr:<address>:clk:<hour>         int   clicks from that address in one hour
 *   <p>addr:<address>:pub:<hour>         hash  the same clicks per publisher (publisherId -> clicks)
 *   <p>click:<clickId>:<event>           set   txids converting one click for one event
 *   <p>offer:<offerId>                   zset  the offer's conversions, 8 days
 *   <p>offer:<offerId>:clk:<yyyymmdd>    int   the offer's clicks per UTC day
 *   <p>seg:<offerId>:<pubId>:<sub1>      zset  conversions of one publisher and sub1, scored by click time
 *   <p>seg:<offerId>:<pubId>:<sub1>:clk:<hour>  int  its clicks per hour
 *   <p>pub:<offerId>:<pubId>             zset  conversions of one publisher (all its sub1s), scored by click time
 *   <p>pub:<offerId>:<pubId>:clk:<hour>  int   its clicks per hour
 *   <p>offer:<offerId>:ctit:<yyyymmdd>          hash  the offer's conversions per CTIT bucket, per UTC day
 *   <p>pub:<offerId>:<pubId>:ctit:<yyyymmdd>    hash  the same for one publisher
 *   <p>seg:<offerId>:<pubId>:<sub1>:ctit:<yyyymmdd>  hash  and for one publisher and sub1
 *
 * A CTIT histogram counts a conversion only when the offer's sorted set did not hold it yet (its
 * ZADD NX added it), so the idempotency per (advertiser, txid) covers the histograms too.
 *
 * IPv6 addresses count per /64 (one subscriber's allocation); sub1 is URL-encoded so no value can
 * forge another key.
 *
 * On a Redis Cluster each family's id is its hash tag, so the keys one script part uses together
 * share a slot while families spread over the shards: `addr:{<address>}…`, `click:{<clickId>}…`, and
 * `offer:{<offerId>}…`, `pub:{<offerId>}…`, `seg:{<offerId>}…` (an offer's conversions decide whether its
 * publishers' and segments' histograms count them, so they stay together). On one Redis and in memory
 * the names carry no braces, as before the cluster existed, so an upgrade keeps every counter.
 */

/** Wraps a family's id in the key: as a `{hash tag}` on a Redis Cluster, as is elsewhere. */
export type KeyTag = (id: string) => string;
export const untagged: KeyTag = (id) => id;
export const clusterTag: KeyTag = (id) => `{${id}}`;

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** The widest window a setting may ask for (ip_burst, conversion_rate_spike): history kept that long. */
export const MAX_WINDOW_S = 86_400;
export const WINDOW_RETENTION_MS = MAX_WINDOW_S * 1000;
/** The offer's conversion-rate baseline spans the current UTC day and the six before it. */
export const BASELINE_DAYS = 7;
export const OFFER_RETENTION_MS = (BASELINE_DAYS + 1) * DAY_MS;
/** Hour buckets must outlive the widest window that reads them, plus the partial hour at its start. */
const HOUR_BUCKET_TTL_MS = WINDOW_RETENTION_MS + 2 * HOUR_MS;
/** A click's conversion set outlives the click's validity by a margin for clock skew between nodes. */
const CLICK_SET_MARGIN_MS = HOUR_MS;

export type Plan = {
  member: string;
  at: number;
  /** `publisherKeys` only for the addresses whose publisher spread was asked for (`spreadOf`). */
  addresses: { key: string; zset: string; clickKeys: readonly string[]; publisherKeys: readonly string[] | undefined }[];
  /** Members scored below this are dropped; counts start at `addressFrom`. */
  addressCutoff: number;
  addressFrom: number;
  click: { set: string; ttlMs: number };
  offer: { zset: string; dayKeys: readonly string[]; todayFrom: number; baselineFrom: number; cutoff: number };
  /** Scored by the click's time, not the conversion's: the segment's rate is that of a click cohort. */
  segment: CohortPlan | undefined;
  /** The same click cohort for the publisher's every sub1: pumping spread over many sub-IDs shows here. Only with a segment. */
  publisher: CohortPlan | undefined;
  /** Only with a segment. Per level (offer, publisher, segment) the baseline days' keys, today's last. */
  ctit: { bucket: number; offerDays: readonly string[]; publisherDays: readonly string[]; segmentDays: readonly string[] } | undefined;
};

export type CohortPlan = { zset: string; score: number; clickKeys: readonly string[]; from: number; cutoff: number };

export function planObservation(prefix: string, obs: ConversionObservation, tag: KeyTag = untagged): Plan {
  const { at } = obs;
  const today = startOfUtcDay(at);
  const baselineFrom = today - (BASELINE_DAYS - 1) * DAY_MS;
  const seg = obs.segment;
  const segKey = seg ? segmentKey(prefix, tag(obs.offerId), seg.publisherId, seg.sub1) : undefined;
  const pubKey = seg ? publisherKey(prefix, tag(obs.offerId), seg.publisherId) : undefined;
  const cohort = (zset: string, windowMs: number): CohortPlan => ({
    zset,
    score: obs.clickAt,
    clickKeys: hourKeys(`${zset}:clk:`, at, windowMs),
    from: at - windowMs,
    cutoff: at - WINDOW_RETENTION_MS,
  });
  const days = (base: string) => bucketKeys(base, baselineFrom / DAY_MS, today / DAY_MS, (d) => dayStamp(d * DAY_MS));
  return {
    member: `${obs.advertiserId}:${obs.txid}`,
    at,
    addresses: obs.addresses.map((key) => ({
      key,
      zset: `${prefix}addr:${tag(key)}`,
      clickKeys: hourKeys(`${prefix}addr:${tag(key)}:clk:`, at, obs.addressWindowMs),
      publisherKeys: obs.spreadOf?.includes(key) ? hourKeys(`${prefix}addr:${tag(key)}:pub:`, at, obs.addressWindowMs) : undefined,
    })),
    addressCutoff: at - WINDOW_RETENTION_MS,
    addressFrom: at - obs.addressWindowMs,
    click: {
      set: `${prefix}click:${tag(obs.clickId)}:${encodeURIComponent(obs.event)}`,
      ttlMs: Math.max(obs.clickExpiresAt - at, 0) + CLICK_SET_MARGIN_MS,
    },
    offer: {
      zset: `${prefix}offer:${tag(obs.offerId)}`,
      dayKeys: days(`${prefix}offer:${tag(obs.offerId)}:clk:`),
      todayFrom: today,
      baselineFrom,
      cutoff: at - OFFER_RETENTION_MS,
    },
    segment: seg && segKey ? cohort(segKey, seg.windowMs) : undefined,
    publisher: seg && pubKey ? cohort(pubKey, seg.windowMs) : undefined,
    ctit:
      seg && segKey && pubKey
        ? {
            bucket: ctitBucket((at - obs.clickAt) / 1000),
            offerDays: days(`${prefix}offer:${tag(obs.offerId)}:ctit:`),
            publisherDays: days(`${pubKey}:ctit:`),
            segmentDays: days(`${segKey}:ctit:`),
          }
        : undefined,
  };
}

/** The counters one click increments (a hash field when `field` is set), with the lifetime each needs. */
export type ClickIncrement = { key: string; field?: string; ttlMs: number };

export function clickIncrements(prefix: string, click: ClickObservation, tag: KeyTag = untagged): ClickIncrement[] {
  const at = click.at.getTime();
  const addressKey = click.address ? countKey(click.address) : undefined;
  const hour = Math.floor(at / HOUR_MS);
  const incs: ClickIncrement[] = [
    { key: `${prefix}offer:${tag(click.offerId)}:clk:${dayStamp(at)}`, ttlMs: OFFER_RETENTION_MS },
    { key: `${segmentKey(prefix, tag(click.offerId), click.publisherId, click.sub1)}:clk:${hour}`, ttlMs: HOUR_BUCKET_TTL_MS },
    { key: `${publisherKey(prefix, tag(click.offerId), click.publisherId)}:clk:${hour}`, ttlMs: HOUR_BUCKET_TTL_MS },
  ];
  if (addressKey) {
    incs.push({ key: `${prefix}addr:${tag(addressKey)}:clk:${hour}`, ttlMs: HOUR_BUCKET_TTL_MS });
    incs.push({ key: `${prefix}addr:${tag(addressKey)}:pub:${hour}`, field: click.publisherId, ttlMs: HOUR_BUCKET_TTL_MS });
  }
  return incs;
}

function segmentKey(prefix: string, offerId: string, publisherId: string, sub1: string | null): string {
  // A missing sub1 and an empty one are the same segment: a publisher that sends none.
  return `${prefix}seg:${offerId}:${publisherId}:${encodeURIComponent(sub1 ?? '')}`;
}

function publisherKey(prefix: string, offerId: string, publisherId: string): string {
  return `${prefix}pub:${offerId}:${publisherId}`;
}

/** Keys of the hour buckets from the one holding `at - windowMs` to the one holding `at`: a superset of the window. */
export function hourKeys(base: string, at: number, windowMs: number): readonly string[] {
  return bucketKeys(base, Math.floor((at - windowMs) / HOUR_MS), Math.floor(at / HOUR_MS), String);
}

/**
 * Bucket key lists are the same for every postback of a segment within the hour; building ~40
 * strings per postback showed in the scoring's profile, so the last list per base is kept. Shared
 * arrays: callers must not modify them.
 */
const lists = new Map<string, { first: number; last: number; keys: readonly string[] }>();
const MAX_LISTS = 50_000;

function bucketKeys(base: string, first: number, last: number, name: (bucket: number) => string): readonly string[] {
  const hit = lists.get(base);
  if (hit && hit.first === first && hit.last === last) return hit.keys;
  const keys: string[] = [];
  for (let b = first; b <= last; b++) keys.push(base + name(b));
  if (lists.size >= MAX_LISTS) lists.clear();
  lists.set(base, { first, last, keys });
  return keys;
}

export function startOfUtcDay(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS;
}

const stamps = new Map<number, string>();

/** yyyymmdd of the UTC day holding `at`; memoised, as every postback asks for the same eight days. */
export function dayStamp(at: number): string {
  const day = Math.floor(at / DAY_MS);
  let stamp = stamps.get(day);
  if (stamp === undefined) {
    stamp = new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '');
    if (stamps.size > 64) stamps.clear();
    stamps.set(day, stamp);
  }
  return stamp;
}

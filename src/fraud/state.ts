import type { IpAddress } from '../net/cidr.js';
import type { RedisClient } from '../state/redis.js';
import { MemoryFraudState } from './state-memory.js';
import { RedisFraudState } from './state-redis.js';

/**
 * The scoring's shared state: exact counters that every engine node must see alike
 * (conversions per user address, per click, per offer and day, per publisher and per publisher
 * segment; clicks per address, offer, publisher and segment). Redis when REDIS_URL is set, so every
 * node counts every node's traffic; otherwise process memory, for a single node. The exact history stays in PostgreSQL; this
 * state only needs to be right inside its windows (at most 8 days).
 *
 * `observe` records one conversion and reads every count the rules need in one round trip (one
 * MULTI on Redis). It is idempotent per (advertiser, txid): scoring the same postback again, on any
 * node, counts it once.
 */

export type ConversionObservation = {
  advertiserId: string;
  txid: string;
  /** Milliseconds since the epoch; the conversion's time for every window. */
  at: number;
  /** Count keys of the user's public addresses (see addresses.ts), deduplicated. */
  addresses: string[];
  /**
   * Of `addresses`, those whose publisher spread is wanted (the scorer asks for hosting and VPN
   * networks' addresses only: reading it for every carrier gateway would cost every postback).
   */
  spreadOf?: readonly string[] | undefined;
  addressWindowMs: number;
  clickId: string;
  /** When the click happened (from the click ID). */
  clickAt: number;
  event: string;
  /** When the click stops being valid: its conversion set is not needed after that. */
  clickExpiresAt: number;
  offerId: string;
  /** Omitted when the click row (and so its sub1) is unknown. */
  segment: { publisherId: string; sub1: string | null; windowMs: number } | undefined;
};

export type ConversionCounts = {
  /**
   * Per address: conversions in the window (this one included) and clicks in the hours covering it;
   * for the addresses in `spreadOf`, how many publishers those clicks came through and how many came
   * through the one with most.
   */
  addresses: AddressCounts[];
  /** Distinct txids for this click and event, this one included. */
  clickConversions: number;
  /** Distinct txids for the offer since 00:00 UTC, this one included. */
  offerToday: number;
  /** The offer's conversions and clicks over the baseline days (today included). */
  offerBaseline: { conversions: number; clicks: number };
  /** Conversions of clicks made in the window (click cohort) and the clicks made in the hours covering it. */
  segment: { conversions: number; clicks: number } | undefined;
  /**
   * The same click cohort for the publisher's every sub1 on this offer, so pumping spread over many
   * rotating sub-IDs is seen as one source. Omitted when the click row is unknown (with the segment).
   */
  publisher?: { conversions: number; clicks: number } | undefined;
  /**
   * Conversions per click-to-conversion bucket (ctit-distribution.ts) over the baseline days, by
   * conversion time, for the offer, the publisher and the segment (publisher + sub1), this one
   * included. Only conversions whose click row was known are counted, at every level, so the offer
   * minus a segment is exactly the rest. Omitted when the click row is unknown.
   */
  ctit?: CtitHistograms | undefined;
};

export type AddressCounts = { key: string; conversions: number; clicks: number; spread?: PublisherSpread };

/** How an address's clicks in the window spread over publishers: a VPN exit's over many, a script's server's on one. */
export type PublisherSpread = { publishers: number; topPublisherClicks: number };

export type CtitHistograms = { offer: number[]; publisher: number[]; segment: number[] };

/** The click's user address is passed parsed: the redirect has parsed it already, and parsing again showed in its profile. */
export type ClickObservation = { offerId: string; publisherId: string; sub1: string | null; address: IpAddress | null; at: Date };

export interface FraudState {
  readonly kind: 'redis' | 'memory';
  observe(obs: ConversionObservation): Promise<ConversionCounts>;
  /** Never throws and never waits: the click redirect must not depend on the counters. */
  recordClick(click: ClickObservation): void;
  /** Writes click counts still buffered (Redis batches them); resolves when they are written or dropped. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export type StateErrorSink = (op: 'observe' | 'click', err: unknown) => void;

export const DEFAULT_KEY_PREFIX = 'pbe:fraud:';

export function createFraudState(redis: RedisClient | undefined, onError: StateErrorSink, prefix = DEFAULT_KEY_PREFIX): FraudState {
  return redis ? new RedisFraudState(redis, { prefix, onError }) : new MemoryFraudState({ prefix });
}

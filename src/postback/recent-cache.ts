import type { RedisClient } from '../state/redis.js';

/**
 * Two caches in front of PostgreSQL, shared by every node through Redis (or in memory for one node):
 * - replay: which content a `webhook-id` / `jti` vouched for, so a reuse with other content is
 *   refused before any work. PostgreSQL's message_ids table stays the authority.
 * - results: the committed outcome per (advertiser, txid), so a retry or replay of a committed
 *   postback is answered `duplicate` without scoring or a transaction. Only committed outcomes are
 *   stored, so answering from here never acknowledges anything that is not durable.
 * Both are read at once (one round trip's wait). They are two commands, not a pipeline: the two keys
 * are independent, so on a Redis Cluster each lives on its own shard (a pipeline must stay on one node).
 * A Redis failure degrades to the full path, never to an error.
 */

export type CachedResult = {
  conversionId: string;
  clickId: string;
  payoutMinor: string;
  currency: string;
  status: string;
  decision: 'accepted' | 'flagged' | 'rejected';
  reasons: string[];
};

export type ReplayVerdict = 'new' | 'same' | 'different';

/** Longer than any signature tolerance a sender can use: a replayed message id is refused for this long. */
const REPLAY_TTL_S = 24 * 3600;
/** Long enough to absorb a sender's retry storm; status changes and conflicts fall through to PostgreSQL. */
const RESULT_TTL_S = 3600;
const MEMORY_MAX_ENTRIES = 200_000;

export type Lookup = { replay: ReplayVerdict; result: CachedResult | undefined };

export class RecentCache {
  private readonly memory = new Map<string, { value: string; expiresAt: number }>();

  constructor(private readonly redis: RedisClient | undefined) {}

  async lookup(advertiserId: string, txid: string, message: { kind: string; id: string; hashHex: string } | undefined): Promise<Lookup> {
    const resultKey = `pb:res:${advertiserId}:${txid}`;
    const replayKey = message ? `pb:msg:${advertiserId}:${message.kind}:${message.id}` : undefined;
    let previous: string | null = null;
    let result: string | null = null;
    if (this.redis) {
      const redis = this.redis;
      // A failed read is a miss: the replay check falls back to PostgreSQL's message_ids, the result to a transaction.
      [previous, result] = await Promise.all([
        replayKey && message ? redis.set(replayKey, message.hashHex, 'EX', REPLAY_TTL_S, 'NX', 'GET').catch(() => null) : null,
        redis.get(resultKey).catch(() => null),
      ]);
    } else {
      if (replayKey && message) {
        previous = this.memGet(replayKey);
        if (previous === null) this.memSet(replayKey, message.hashHex, REPLAY_TTL_S);
      }
      result = this.memGet(resultKey);
    }
    const replay: ReplayVerdict = !message || previous === null ? 'new' : previous === message.hashHex ? 'same' : 'different';
    return { replay, result: result ? (JSON.parse(result) as CachedResult) : undefined };
  }

  async remember(advertiserId: string, txid: string, value: CachedResult): Promise<void> {
    const key = `pb:res:${advertiserId}:${txid}`;
    const text = JSON.stringify(value);
    if (this.redis) {
      await this.redis.set(key, text, 'EX', RESULT_TTL_S).catch(() => undefined);
    } else {
      this.memSet(key, text, RESULT_TTL_S);
    }
  }

  private memGet(key: string): string | null {
    const entry = this.memory.get(key);
    if (!entry) return null;
    if (entry.expiresAt < Date.now()) {
      this.memory.delete(key);
      return null;
    }
    return entry.value;
  }

  private memSet(key: string, value: string, ttlS: number): void {
    // Maps iterate in insertion order: dropping the first key evicts the oldest entry.
    if (this.memory.size >= MEMORY_MAX_ENTRIES) {
      const oldest = this.memory.keys().next().value;
      if (oldest !== undefined) this.memory.delete(oldest);
    }
    this.memory.set(key, { value, expiresAt: Date.now() + ttlS * 1000 });
  }
}

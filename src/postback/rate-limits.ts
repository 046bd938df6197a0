import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisClient } from '../state/redis.js';

/**
 * Postback rate limits: per advertiser (its `rateLimit.perS`) and per source address. With Redis the
 * counters are shared by every node, so N nodes do not multiply the limit; if Redis fails, each
 * node falls back to its own memory counters (an insurance limiter) instead of refusing or
 * unthrottling all traffic. Each counter is one key, consumed by one single-key script, so on a Redis
 * Cluster the addresses and advertisers spread over every shard without hash tags.
 */

export type RateDecision = { ok: true } | { ok: false; retryAfterS: number; scope: 'address' | 'advertiser' };

export class PostbackRateLimits {
  private readonly advertiserLimiters = new Map<number, RateLimiterAbstract>();
  private readonly addressLimiter: RateLimiterAbstract;

  constructor(private readonly redis: RedisClient | undefined, addressPerS: number) {
    this.addressLimiter = this.limiter('rl:addr', addressPerS);
  }

  /**
   * Both limits are consumed at once (with Redis, one round trip instead of two). A request refused
   * by its address still spends a point of its advertiser's: the address limit is the looser one
   * (ADDRESS_RATE_LIMIT_PER_S, 1,000/s by default, against 200/s per advertiser), so checking it
   * first never shielded an advertiser's budget anyway.
   */
  async check(advertiserId: string | undefined, advertiserPerS: number | undefined, address: string): Promise<RateDecision> {
    const [byAddress, byAdvertiser] = await Promise.all([
      this.consume(this.addressLimiter, address),
      advertiserId !== undefined && advertiserPerS !== undefined ? this.consume(this.advertiserLimiter(advertiserPerS), advertiserId) : undefined,
    ]);
    if (byAddress !== undefined) return { ok: false, retryAfterS: byAddress, scope: 'address' };
    if (byAdvertiser !== undefined) return { ok: false, retryAfterS: byAdvertiser, scope: 'advertiser' };
    return { ok: true };
  }

  private advertiserLimiter(perS: number): RateLimiterAbstract {
    let limiter = this.advertiserLimiters.get(perS);
    if (!limiter) {
      limiter = this.limiter(`rl:adv:${perS}`, perS);
      this.advertiserLimiters.set(perS, limiter);
    }
    return limiter;
  }

  /** undefined when allowed, else whole seconds to wait. */
  private async consume(limiter: RateLimiterAbstract, key: string): Promise<number | undefined> {
    try {
      await limiter.consume(key);
      return undefined;
    } catch (res) {
      if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw res;
    }
  }

  private limiter(keyPrefix: string, points: number): RateLimiterAbstract {
    const memory = new RateLimiterMemory({ keyPrefix, points, duration: 1 });
    if (!this.redis) return memory;
    return new RateLimiterRedis({ storeClient: this.redis, keyPrefix, points, duration: 1, insuranceLimiter: memory });
  }
}

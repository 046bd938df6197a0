import type { Config } from '../config.js';
import type { DatabaseBreaker } from '../db/breaker.js';
import type { Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RedisClient } from '../state/redis.js';
import { AttemptLog } from './attempt-log.js';
import { GroupCommitter } from './group-committer.js';
import { JwksCache } from './jwt.js';
import { PostbackRateLimits } from './rate-limits.js';
import { RecentCache } from './recent-cache.js';
import type { PostbackScorer } from './types.js';

/** The long-lived parts of the postback intake, one set per engine process. */
export class PostbackIntake {
  readonly rateLimits: PostbackRateLimits;
  readonly jwks = new JwksCache();
  readonly attempts: AttemptLog;
  readonly committer: GroupCommitter;
  readonly recent: RecentCache;
  readonly breaker: DatabaseBreaker;

  constructor(
    deps: {
      config: Config;
      sql: Sql;
      txSql: Sql;
      /** The group commit's one statement runs here (PLANNED_POOL_MAX in db/database.ts). */
      plannedSql: Sql;
      redis: RedisClient | undefined;
      metrics: Metrics;
      log: Logger;
      breaker: DatabaseBreaker;
    },
    readonly scorer: PostbackScorer,
  ) {
    this.recent = new RecentCache(deps.redis);
    this.rateLimits = new PostbackRateLimits(deps.redis, deps.config.addressRateLimitPerS);
    this.attempts = new AttemptLog(deps.sql, deps.metrics, deps.log);
    this.breaker = deps.breaker;
    this.committer = new GroupCommitter(deps.plannedSql, deps.txSql, deps.config.refireWindowS, deps.metrics, deps.log, undefined, deps.breaker);
  }

  async close(): Promise<void> {
    await this.committer.drain();
    await this.attempts.close();
  }
}

import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import type { Sql } from '../../src/db/database.js';
import { createEngine, type Engine, type EngineOptions } from '../../src/engine.js';
import { createLogger } from '../../src/logger.js';
import { freshDatabase } from './db.js';

export const ADMIN = 'test-admin-token-0123456789';
export const auth = (token = ADMIN) => ({ authorization: `Bearer ${token}` });

export type TestEngine = { app: FastifyInstance; engine: Engine; sql: Sql; url: string; close: () => Promise<void> };

/** A whole engine over a fresh database, driven through `app.inject()`. */
export async function startTestEngine(overrides: Partial<Config> = {}, opts: EngineOptions = {}): Promise<TestEngine> {
  const db = await freshDatabase();
  const config = testConfig({ adminToken: ADMIN, databaseUrl: db.url, ...overrides });
  const engine = await createEngine(config, db.sql, createLogger('silent'), opts);
  const app = await buildApp(engine);
  await app.ready();
  return {
    app,
    engine,
    sql: db.sql,
    url: db.url,
    close: async () => {
      await app.close();
      await engine.close();
      await db.drop();
    },
  };
}

/**
 * Test traffic posts back milliseconds after its click, reuses one click for many txids and comes from
 * one address, which the real fraud rules rightly flag. Tests about other things run those rules in
 * monitor mode (still evaluated, recorded in the evidence, zero points); fraud tests pass their own
 * `offer.fraud`.
 */
export const TEST_TRAFFIC_FRAUD = {
  rules: {
    ctit_too_short: { mode: 'monitor' },
    multiple_conversions_per_click: { mode: 'monitor' },
    ip_burst: { mode: 'monitor' },
    // Test clicks come from fetch and curl: an HTTP library is worth a review on its own by default.
    bot_user_agent: { mode: 'monitor' },
  },
};

/** Creates an advertiser, a publisher and an offer through the API; returns their bodies. */
export async function seedCatalog(app: FastifyInstance, opts: { advertiser?: object; publisher?: object; offer?: object } = {}) {
  const post = async (url: string, payload: object) => {
    const res = await app.inject({ method: 'POST', url, headers: auth(), payload });
    if (res.statusCode !== 201) throw new Error(`${url} -> ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const advertiser = await post('/v1/advertisers', { name: 'Acme', ipAllowlist: [], auth: ['hmac'], ...opts.advertiser });
  const publisher = await post('/v1/publishers', { name: 'Pub One', postbackUrl: 'https://pub.example/pb?c={clickid}', ...opts.publisher });
  const offer = await post('/v1/offers', {
    advertiserId: advertiser.id,
    name: 'Offer',
    url: 'https://adv.example/lp?cid={clickid}',
    payout: '2.50',
    currency: 'USD',
    fraud: TEST_TRAFFIC_FRAUD,
    ...opts.offer,
  });
  return { advertiser, publisher, offer };
}

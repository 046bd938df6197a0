import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

/** Exactly once under concurrency: the group committer and the unique key together. */

let t: TestEngine;
let advId: string;
let whsec: string;
let offerId: string;
let pubId: string;

beforeAll(async () => {
  t = await startTestEngine({ addressRateLimitPerS: 1_000_000 });
  const seeded = await seedCatalog(t.app, { advertiser: { rateLimit: { perS: 1_000_000 } } });
  advId = seeded.advertiser.id;
  whsec = seeded.advertiser.secrets[0].secret;
  offerId = seeded.offer.id;
  pubId = seeded.publisher.id;
});
afterAll(async () => t?.close());

const get = (query: string) => t.app.inject({ method: 'GET', url: signedGetUrl(advId, query, whsec), remoteAddress: '192.0.2.1' });

describe('concurrent postbacks', () => {
  it('200 identical postbacks in parallel make one conversion; every answer names it', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txid = uniqueTx();
    const answers = await Promise.all(Array.from({ length: 200 }, () => get(`clickid=${clickid}&txid=${txid}&payout=2.50`)));
    expect(answers.every((a) => a.statusCode === 200)).toBe(true);
    const ids = new Set(answers.map((a) => a.json().conversionId));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.json().duplicate === false)).toHaveLength(1);
    const [row] = await t.sql`select count(*)::int as n from conversions where txid = ${txid}`;
    expect(row?.n).toBe(1);
    const [history] = await t.sql`select count(*)::int as n from conversion_status_history h join conversions c on c.id = h.conversion_id where c.txid = ${txid}`;
    expect(history?.n).toBe(1);
    const [outbox] = await t.sql`select count(*)::int as n from deliveries d join conversions c on c.id = d.conversion_id where c.txid = ${txid}`;
    expect(outbox?.n).toBe(1);
  });

  it('1,000 distinct postbacks in parallel make exactly 1,000 conversions, committed in groups', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txids = Array.from({ length: 1000 }, () => uniqueTx());
    const before = (await t.engine.metrics.commitBatchSize.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const answers = await Promise.all(txids.map((txid) => get(`clickid=${clickid}&txid=${txid}`)));
    const failed = answers.filter((a) => !(a.statusCode === 200 && a.json().duplicate === false));
    expect(failed.map((a) => `${a.statusCode} ${a.body}`)).toEqual([]);
    const [row] = await t.sql`select count(*)::int as n from conversions where txid = any(${txids})`;
    expect(row?.n).toBe(1000);
    const after = (await t.engine.metrics.commitBatchSize.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    // Fewer transactions than postbacks: concurrent arrivals shared commits.
    expect(after - before).toBeLessThan(1000);
  });
});

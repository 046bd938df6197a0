import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../src/db/database.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import type { CommitItem } from '../src/postback/commit-batch.js';
import { GroupCommitter } from '../src/postback/group-committer.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The group committer's split: new txids commit in one statement and are answered at once; the rest
 * go through a transaction. A failure of that transaction must not touch postbacks already committed.
 */

let t: TestEngine;
let ids: { advertiserId: string; offerId: string; publisherId: string };

beforeAll(async () => {
  t = await startTestEngine();
  const seeded = await seedCatalog(t.app);
  ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id };
});
afterAll(async () => t?.close());

let serial = 0;
function item(overrides: Partial<CommitItem> = {}): CommitItem {
  serial++;
  return {
    conversionId: `cv_group_${serial}`,
    ...ids,
    clickId: `click_group_${serial}`,
    clickCreatedAt: new Date('2026-11-22T01:00:00.000Z'),
    txid: `tx_group_${serial}`,
    event: 'conversion',
    status: 'approved',
    payoutMinor: 250n,
    currency: 'USD',
    subs: [null, null, null, null, null],
    userIp: null,
    userAgent: null,
    sourceIp: '198.51.100.1',
    score: { score: 50, decision: 'flagged', reasons: ['ip_burst'], evidence: [] },
    message: undefined,
    ...overrides,
  };
}

describe('group commit', () => {
  it('answers a new txid as created even when the transaction for the rest of its group fails', async () => {
    const existing = item();
    const first = new GroupCommitter(t.engine.sql, t.engine.txSql, 3600, createMetrics(), createLogger('silent'));
    expect(await first.submit(existing)).toMatchObject({ kind: 'created', conversionId: existing.conversionId });

    const failingTransactions = { begin: async () => Promise.reject(new Error('the transaction failed')) } as unknown as Sql;
    const metrics = createMetrics();
    // One commit at a time: while the first runs, the next two queue and then commit as one group.
    const committer = new GroupCommitter(t.engine.sql, failingTransactions, 3600, metrics, createLogger('silent'), 1);
    const fresh = item();
    const repeat = item({ txid: existing.txid, clickId: existing.clickId });
    const [, freshOutcome, repeatOutcome] = await Promise.allSettled([committer.submit(item()), committer.submit(fresh), committer.submit(repeat)]);
    expect(freshOutcome).toEqual({
      status: 'fulfilled',
      value: { kind: 'created', conversionId: fresh.conversionId, decision: 'flagged', reasons: ['ip_burst'], status: 'approved' },
    });
    expect(repeatOutcome).toMatchObject({ status: 'rejected', reason: { code: 'unavailable' } });
    // Two groups (1 and 2 postbacks), nothing retried alone: the created postback was never committed again.
    const sizes = (await metrics.commitBatchSize.get()).values.filter((v) => v.metricName?.endsWith('_sum') || v.metricName?.endsWith('_count'));
    expect(sizes.map((v) => v.value)).toEqual([3, 2]);
    const rows = await t.sql`select id from conversions where txid in (${fresh.txid}, ${existing.txid}) order by id`;
    expect(rows.map((r) => r.id).sort()).toEqual([existing.conversionId, fresh.conversionId].sort());
  });
});

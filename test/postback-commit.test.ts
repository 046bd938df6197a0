import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitItem } from '../src/postback/commit-batch.js';
import { commitFresh, isFresh, type FreshItem } from '../src/postback/commit-fresh.js';
import type { ScoreResult } from '../src/postback/types.js';
import type { Sql } from '../src/db/database.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { GroupCommitter } from '../src/postback/group-committer.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The intake's commit path. The one-statement commit of new conversions writes every row the
 * transactional path would (the conversion, its first history row, its outbox row and the wake-up
 * of the delivery workers), and nothing for a txid that already exists, which it hands back to the
 * transactional path. The group committer answers what that statement created at once, so a failure
 * of the transaction for the rest of the group never touches it.
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
// The run's own time, whole seconds: a conversion's time is its receipt, and its delivery's deadline
// counts from it, so a fixed date would be past the refire window (and swept as expired) on later days.
const RECEIVED_AT = new Date(Math.floor(Date.now() / 1000) * 1000);
const CLICKED_AT = new Date(RECEIVED_AT.getTime() - 544);
const accepted: ScoreResult = { score: 0, decision: 'accepted', reasons: [], evidence: [{ code: 'ctit_too_short', value: 42, threshold: 10 }] };
const flagged: ScoreResult = { score: 55, decision: 'flagged', reasons: ['ip_burst', 'datacenter_ip'], evidence: [{ code: 'ip_burst', fired: true, points: 30 }] };

function item(overrides: Partial<CommitItem> = {}): FreshItem {
  serial++;
  return {
    conversionId: `cv_fresh_${serial}`,
    ...ids,
    clickId: `click_${serial}`,
    clickCreatedAt: CLICKED_AT,
    txid: `tx_fresh_${serial}`,
    event: 'conversion',
    status: 'approved',
    payoutMinor: 9_007_199_254_740_993n, // above 2^53: must not pass through a double
    revenueMinor: 9_007_199_254_740_995n,
    amountMinor: null,
    currency: 'USD',
    caps: [],
    receivedAt: RECEIVED_AT,
    subs: ['s1', null, 's3', null, null],
    userIp: '203.0.113.9',
    userAgent: 'Mozilla/5.0 "quoted" \\ back',
    sourceIp: '198.51.100.1',
    score: accepted,
    message: undefined,
    ...overrides,
  } as FreshItem;
}

describe('the one-statement commit', () => {
  it('writes the conversion, its first history row and, for an accepted one, its delivery; and wakes the workers', async () => {
    const woken: string[] = [];
    const listener = await t.sql.listen('deliveries', (payload) => woken.push(payload));
    try {
      const a = item();
      const f = item({ score: flagged, status: 'pending' });
      const created = await commitFresh(t.engine.sql, [a, f], 3600);
      expect(created).toEqual(new Set([a.conversionId, f.conversionId]));

      const [row] = await t.sql`select * from conversions where id = ${a.conversionId}`;
      expect(row).toMatchObject({
        advertiser_id: ids.advertiserId,
        offer_id: ids.offerId,
        publisher_id: ids.publisherId,
        click_id: a.clickId,
        click_created_at: a.clickCreatedAt,
        txid: a.txid,
        event: 'conversion',
        status: 'approved',
        sub1: 's1',
        sub2: null,
        sub3: 's3',
        payout_minor: 9_007_199_254_740_993n,
        currency: 'USD',
        decision: 'accepted',
        score: 0,
        reasons: [],
        evidence: [{ code: 'ctit_too_short', value: 42, threshold: 10 }],
        source: 's2s',
        user_agent: 'Mozilla/5.0 "quoted" \\ back',
        review_state: 'none',
      });
      const [flaggedRow] = await t.sql`select decision, score, reasons, status from conversions where id = ${f.conversionId}`;
      expect(flaggedRow).toEqual({ decision: 'flagged', score: 55, reasons: ['ip_burst', 'datacenter_ip'], status: 'pending' });

      const history = await t.sql`select conversion_id, from_status, to_status, payout_minor, currency, source from conversion_status_history
        where conversion_id in (${a.conversionId}, ${f.conversionId}) order by conversion_id`;
      expect(history).toEqual([
        { conversion_id: a.conversionId, from_status: null, to_status: 'approved', payout_minor: 9_007_199_254_740_993n, currency: 'USD', source: 's2s' },
        { conversion_id: f.conversionId, from_status: null, to_status: 'pending', payout_minor: 9_007_199_254_740_993n, currency: 'USD', source: 's2s' },
      ]);

      // Only the accepted one notifies its publisher; its deadline counts from the conversion's time.
      // The engine's own worker may already have tried it (pub.example does not answer): still open.
      const deliveries = await t.sql`select d.conversion_id, d.publisher_id, d.state in ('pending', 'failed') as open, d.deadline_at - c.created_at as window
        from deliveries d join conversions c on c.id = d.conversion_id where d.conversion_id in (${a.conversionId}, ${f.conversionId})`;
      expect(deliveries).toEqual([{ conversion_id: a.conversionId, publisher_id: ids.publisherId, open: true, window: '01:00:00' }]);
      // One wake-up, naming the publisher: a worker that cannot take it now skips the claim.
      await expect.poll(() => woken).toEqual([ids.publisherId]);
    } finally {
      await listener.unlisten();
    }
  });

  it('creates nothing for a txid that exists, and says so, while the rest of its batch commits', async () => {
    const first = item();
    await commitFresh(t.engine.sql, [first], 3600);
    const repeat = item({ txid: first.txid, payoutMinor: 1n });
    const other = item();
    const created = await commitFresh(t.engine.sql, [repeat, other], 3600);
    expect(created).toEqual(new Set([other.conversionId]));
    expect(await t.sql`select id, payout_minor from conversions where txid = ${first.txid}`).toEqual([{ id: first.conversionId, payout_minor: 9_007_199_254_740_993n }]);
    for (const table of ['conversion_status_history', 'deliveries']) {
      const [n] = await t.sql`select count(*)::int as n from ${t.sql(table)} where conversion_id = ${repeat.conversionId}`;
      expect(n?.n, table).toBe(0);
    }
  });

  it('is all or nothing: a row PostgreSQL refuses leaves no row of its batch behind', async () => {
    const good = item();
    const bad = item({ offerId: 'off_missing' });
    await expect(commitFresh(t.engine.sql, [good, bad], 3600)).rejects.toMatchObject({ code: '23503' });
    const [n] = await t.sql`select count(*)::int as n from conversions where id in (${good.conversionId}, ${bad.conversionId})`;
    expect(n?.n).toBe(0);
  });

  it('takes only new txids without a webhook-id or jti', () => {
    expect(isFresh(item())).toBe(true);
    expect(isFresh({ ...item(), score: undefined })).toBe(false);
    expect(isFresh({ ...item(), message: { kind: 'webhook', id: 'msg_1', hashHex: '00' } })).toBe(false);
  });
});

describe('group commit', () => {
  it('answers a new txid as created even when the transaction for the rest of its group fails', async () => {
    const existing = item({ score: flagged, status: 'pending' });
    const first = new GroupCommitter(t.engine.sql, t.engine.txSql, 3600, createMetrics(), createLogger('silent'));
    expect(await first.submit(existing)).toMatchObject({ kind: 'created', conversionId: existing.conversionId });

    const failingTransactions = { begin: async () => Promise.reject(new Error('the transaction failed')) } as unknown as Sql;
    const metrics = createMetrics();
    // One commit at a time: while the first runs, the next two queue and then commit as one group.
    const committer = new GroupCommitter(t.engine.sql, failingTransactions, 3600, metrics, createLogger('silent'), 1);
    const fresh = item({ score: flagged });
    const repeat = item({ txid: existing.txid, clickId: existing.clickId, score: flagged, status: 'pending' });
    const [, freshOutcome, repeatOutcome] = await Promise.allSettled([committer.submit(item({ score: flagged })), committer.submit(fresh), committer.submit(repeat)]);
    expect(freshOutcome).toEqual({
      status: 'fulfilled',
      value: { kind: 'created', conversionId: fresh.conversionId, decision: 'flagged', reasons: ['ip_burst', 'datacenter_ip'], status: 'approved' },
    });
    expect(repeatOutcome).toMatchObject({ status: 'rejected', reason: { code: 'unavailable' } });
    // Two groups (1 and 2 postbacks), nothing retried alone: the created postback was never committed again.
    const sizes = (await metrics.commitBatchSize.get()).values.filter((v) => v.metricName?.endsWith('_sum') || v.metricName?.endsWith('_count'));
    expect(sizes.map((v) => v.value)).toEqual([3, 2]);
    const rows = await t.sql`select id from conversions where txid in (${fresh.txid}, ${existing.txid}) order by id`;
    expect(rows.map((r) => r.id).sort()).toEqual([existing.conversionId, fresh.conversionId].sort());
  });
});

import type { Sql } from '../db/database.js';
import { queueDeliveriesCtes } from '../delivery/outbox.js';
import { releasesDelivery, type CommitItem } from './commit-batch.js';
import type { ScoreResult } from './types.js';

/**
 * The common case of the group commit in one statement: postbacks for txids this engine has not
 * seen, carrying no webhook-id or jti (signed GET postbacks). The conversion, its first history row
 * and its outbox row (delivery/outbox.ts's CTEs, which wake the workers too) are written by one
 * INSERT chain, which PostgreSQL runs and commits atomically on its own, so the batch costs one
 * round trip instead of BEGIN, the statements and COMMIT (three), and the rows travel as one JSON parameter instead of two dozen arrays.
 *
 * A txid that turns out to exist already is not inserted (ON CONFLICT DO NOTHING) and is reported
 * back: it is a retry, a status change or a conflict, which the transactional path (commit-batch.ts)
 * resolves under row locks. Everything with a message ID goes that way too, because binding a
 * webhook-id or jti and undoing the binding when the postback is refused must share a transaction.
 */

export type FreshItem = CommitItem & { score: ScoreResult; message: undefined };

export function isFresh(item: CommitItem): item is FreshItem {
  return item.score !== undefined && item.message === undefined;
}

/** Writes the items it can; returns the conversion IDs it created (the others' txids already exist). */
export async function commitFresh(sql: Sql, items: FreshItem[], refireWindowS: number): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  // Sorted by the unique key, so concurrent batches (on any node) take index locks in one order.
  const sorted = [...items].sort((a, b) => compare(a.advertiserId, b.advertiserId) || compare(a.txid, b.txid));
  const rows = sorted.map((r) => ({
    id: r.conversionId,
    adv: r.advertiserId,
    off: r.offerId,
    pub: r.publisherId,
    clk: r.clickId,
    clk_at: r.clickCreatedAt.toISOString(),
    txid: r.txid,
    ev: r.event,
    st: r.status,
    s1: r.subs[0] ?? null,
    s2: r.subs[1] ?? null,
    s3: r.subs[2] ?? null,
    s4: r.subs[3] ?? null,
    s5: r.subs[4] ?? null,
    // A string: JSON numbers are doubles, and money never passes through a float.
    payout: r.payoutMinor.toString(),
    revenue: r.revenueMinor.toString(),
    amount: r.amountMinor?.toString() ?? null,
    cur: r.currency,
    dec: r.score.decision,
    score: r.score.score,
    reasons: r.score.reasons,
    evidence: r.score.evidence,
    uip: r.userIp,
    uua: r.userAgent,
    sip: r.sourceIp,
    // The conversion's time, which its ID carries (route.ts mints it from the same clock reading).
    at: r.receivedAt.toISOString(),
    dlv: releasesDelivery(r.score.decision, r.status),
  }));
  const created = await sql<{ id: string }[]>`
    with input as (
      select * from jsonb_to_recordset(${sql.json(rows as never)}) as u(
        id text, adv text, off text, pub text, clk text, clk_at timestamptz, txid text, ev text, st text,
        s1 text, s2 text, s3 text, s4 text, s5 text, payout bigint, revenue bigint, amount bigint, cur text, dec text, score smallint,
        reasons jsonb, evidence jsonb, uip inet, uua text, sip inet, at timestamptz, dlv boolean)
    ),
    -- The txid key lives in a table of its own so that it is unique across conversions' partitions;
    -- only the txids claimed here get a conversion.
    claimed as (
      insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
      select adv, txid, id, at from input
      on conflict (advertiser_id, txid) do nothing
      returning conversion_id
    ),
    inserted as (
      insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
        sub1, sub2, sub3, sub4, sub5, payout_minor, revenue_minor, amount_minor, currency, decision, score, reasons, evidence, source, user_ip, user_agent, source_ip,
        created_at)
      select id, adv, off, pub, clk, clk_at, txid, ev, st, s1, s2, s3, s4, s5, payout, revenue, amount, cur, dec, score,
             array(select jsonb_array_elements_text(reasons)), evidence, 's2s', uip, uua, sip, at
      from input join claimed on claimed.conversion_id = input.id
      returning id, advertiser_id, publisher_id, event, status, payout_minor, currency, created_at
    ),
    history as (
      insert into conversion_status_history (conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
      select id, advertiser_id, null, status, payout_minor, currency, 's2s', created_at from inserted
    ),
    ${queueDeliveriesCtes(
      sql,
      // Dated with its conversion (the same commit), in the ID too (timed_id): never before it, as lookups by conversion assume.
      sql`select c.id as conversion_id, c.created_at as conversion_created_at, c.publisher_id, c.event, c.status,
                 c.created_at as window_from, c.created_at as dated_at
          from inserted c join input i on i.id = c.id and i.dlv`,
      refireWindowS,
    )}
    -- woken is a plain SELECT: PostgreSQL runs it only if the result reads it.
    select inserted.id from inserted cross join woken`;
  return new Set(created.map((c) => c.id));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

import { onCitus } from '../db/citus.js';
import type { TxSql } from '../db/database.js';
import { enqueueDeliveriesOf, enqueueStatusChange, hasDelivery, withdrawDeliveries } from '../delivery/outbox.js';
import type { Cap } from '../offers/terms.js';
import type { Decision, ScoreResult } from './types.js';

/**
 * One PostgreSQL transaction for a group of postbacks. Idempotency is the database's: the unique key
 * (advertiser_id, txid) decides, on every node, whether a postback creates a conversion or meets
 * one. Statements are set-based over the whole group; only the rare status changes run per row.
 * Rows are sorted by their unique keys so concurrent groups lock in one order.
 */

export type MessageRef = { kind: 'webhook' | 'jti'; id: string; hashHex: string };

export type CommitItem = {
  conversionId: string;
  advertiserId: string;
  offerId: string;
  publisherId: string;
  clickId: string;
  clickCreatedAt: Date;
  txid: string;
  event: string;
  status: 'approved' | 'pending' | 'rejected';
  payoutMinor: bigint;
  revenueMinor: bigint;
  amountMinor: bigint | null;
  currency: string;
  /** The offer's caps when it has any: such an item commits under the caps' row locks (caps.ts). */
  caps: readonly Cap[];
  receivedAt: Date;
  subs: (string | null)[];
  userIp: string | null;
  userAgent: string | null;
  sourceIp: string | null;
  /** Absent when the txid is known to exist already: such an item may only meet its conversion. */
  score: ScoreResult | undefined;
  message: MessageRef | undefined;
};

export type CommitOutcome =
  | { kind: 'created' | 'duplicate' | 'status_changed' | 'completed'; conversionId: string; decision: Decision; reasons: string[]; status: string }
  | { kind: 'conflict'; message: string; conversionId?: string };

type Existing = {
  id: string;
  created_at: Date;
  advertiser_id: string;
  txid: string;
  click_id: string;
  payout_minor: bigint;
  currency: string;
  status: string;
  decision: Decision;
  reasons: string[];
  source: string;
  review_state: string;
};

/** Status changes an advertiser may send: approval of a pending sale, a decline, a chargeback. */
const ALLOWED_TRANSITIONS = new Set(['pending>approved', 'pending>rejected', 'approved>rejected']);

const key = (advertiserId: string, txid: string) => `${advertiserId}\u0000${txid}`;

export async function commitBatch(tx: TxSql, items: CommitItem[], refireWindowS: number): Promise<CommitOutcome[]> {
  const outcomes = new Array<CommitOutcome | undefined>(items.length);
  const order = items.map((_, i) => i).sort((a, b) => compareKeys(items[a] as CommitItem, items[b] as CommitItem));
  const fresh = order.map((i) => items[i] as CommitItem).filter((item): item is ScoredItem => item.score !== undefined);
  const deliverable = fresh.filter((c) => releasesDelivery(c.score.decision, c.status)).map((c) => ({ id: c.conversionId, createdAt: c.receivedAt }));

  // One round trip for the common case: postgres.js pipelines these statements back to back, and each
  // later one joins what the earlier ones wrote by the pre-generated conversion IDs, so a postback that
  // met an existing txid gets no history or outbox row.
  const [claimed, created] = await Promise.all([
    claimMessageIds(tx, order.map((i) => items[i] as CommitItem)),
    insertConversions(tx, fresh),
    fresh.length > 0 ? insertFirstHistory(tx, fresh) : undefined,
    deliverable.length > 0 ? enqueueDeliveriesOf(tx, deliverable, refireWindowS) : undefined,
  ]);
  const insertedMessages = await refuseReusedMessageIds(tx, items, order, claimed, outcomes);

  // A conversion created for a message id that turns out reused with other content is taken back.
  const undone = order.filter((i) => outcomes[i]?.kind === 'conflict' && created.has((items[i] as CommitItem).conversionId));
  if (undone.length > 0) {
    const taken = undone.map((i) => items[i] as CommitItem);
    const ids = taken.map((t) => t.conversionId);
    // Everything written for them is dated at their own time or later (the partitions to look in).
    const sinceAt = new Date(Math.min(...taken.map((t) => t.receivedAt.getTime())));
    const since = sinceAt.toISOString();
    await withdrawDeliveries(tx, ids, sinceAt);
    await tx`delete from conversion_status_history where conversion_id = any(${ids}::text[]) and created_at >= ${since}::timestamptz`;
    await tx`delete from conversions where id = any(${ids}::text[]) and created_at >= ${since}::timestamptz`;
    await tx`delete from conversion_txids where conversion_id = any(${ids}::text[])
      and (advertiser_id, txid) in (select * from unnest(${taken.map((t) => t.advertiserId)}::text[], ${taken.map((t) => t.txid)}::text[]))`;
  }

  const rest: number[] = [];
  for (const i of order) {
    if (outcomes[i] !== undefined) continue;
    const item = items[i] as CommitItem;
    if (item.score && created.has(item.conversionId)) {
      outcomes[i] = { kind: 'created', conversionId: item.conversionId, decision: item.score.decision, reasons: item.score.reasons, status: item.status };
    } else {
      rest.push(i);
    }
  }

  if (rest.length > 0) {
    const existing = await lockExisting(tx, rest.map((i) => items[i] as CommitItem));
    for (const i of rest) {
      const item = items[i] as CommitItem;
      const found = existing.get(key(item.advertiserId, item.txid));
      outcomes[i] = found
        ? await resolveRepeat(tx, item, found, refireWindowS)
        : { kind: 'conflict', message: 'this txid was expected to exist and does not; retry the postback' };
    }
  }

  // A message id must not stay bound to content that was refused.
  const refusedMessages = order.filter((i) => outcomes[i]?.kind === 'conflict' && insertedMessages.has(i));
  if (refusedMessages.length > 0) {
    const refused = refusedMessages.map((i) => items[i] as CommitItem);
    await tx`delete from message_ids where (advertiser_id, kind, message_id) in (
      select * from unnest(${refused.map((r) => r.advertiserId)}::text[], ${refused.map((r) => r.message?.kind ?? '')}::text[],
                           ${refused.map((r) => r.message?.id ?? '')}::text[]))`;
  }
  return outcomes as CommitOutcome[];
}

/** Accepted conversions notify the publisher; an advertiser-rejected sale pays nothing, so it notifies no one. */
export function releasesDelivery(decision: Decision, status: string): boolean {
  return decision === 'accepted' && status !== 'rejected';
}

function compareKeys(a: CommitItem, b: CommitItem): number {
  return a.advertiserId < b.advertiserId ? -1 : a.advertiserId > b.advertiserId ? 1 : a.txid < b.txid ? -1 : a.txid > b.txid ? 1 : 0;
}

const messageKey = (advertiserId: string, kind: string, id: string) => `${advertiserId}\u0000${kind}\u0000${id}`;

/** Binds each webhook-id / jti to its content; the keys it could claim come back. */
async function claimMessageIds(tx: TxSql, sorted: CommitItem[]): Promise<Set<string>> {
  const rows = sorted.filter((item) => item.message !== undefined);
  if (rows.length === 0) return new Set();
  const msg = (r: CommitItem) => r.message as MessageRef;
  const claimed = await tx<{ advertiser_id: string; kind: string; message_id: string }[]>`
    insert into message_ids (advertiser_id, kind, message_id, content_hash, txid)
    select a, k, m, decode(h, 'hex'), t
    from unnest(${rows.map((r) => r.advertiserId)}::text[], ${rows.map((r) => msg(r).kind)}::text[], ${rows.map((r) => msg(r).id)}::text[],
                ${rows.map((r) => msg(r).hashHex)}::text[], ${rows.map((r) => r.txid)}::text[]) as u(a, k, m, h, t)
    on conflict do nothing
    returning advertiser_id, kind, message_id`;
  return new Set(claimed.map((c) => messageKey(c.advertiser_id, c.kind, c.message_id)));
}

/**
 * A message id claimed before (by an earlier postback, or by an earlier item of this group) must carry
 * the same content: a reuse with other content is refused (409). Returns the items whose claim was new.
 */
async function refuseReusedMessageIds(
  tx: TxSql,
  items: CommitItem[],
  order: number[],
  claimed: Set<string>,
  outcomes: (CommitOutcome | undefined)[],
): Promise<Set<number>> {
  const inserted = new Set<number>();
  const seen = new Set<string>();
  const toCheck: number[] = [];
  for (const i of order) {
    const item = items[i] as CommitItem;
    if (!item.message) continue;
    const k = messageKey(item.advertiserId, item.message.kind, item.message.id);
    if (claimed.has(k) && !seen.has(k)) inserted.add(i);
    else toCheck.push(i);
    seen.add(k);
  }
  if (toCheck.length === 0) return inserted;
  const checks = toCheck.map((i) => items[i] as CommitItem);
  const stored = await tx<{ advertiser_id: string; kind: string; message_id: string; h: string }[]>`
    select advertiser_id, kind, message_id, encode(content_hash, 'hex') as h from message_ids
    where (advertiser_id, kind, message_id) in (
      select * from unnest(${checks.map((r) => r.advertiserId)}::text[], ${checks.map((r) => r.message?.kind ?? '')}::text[],
                           ${checks.map((r) => r.message?.id ?? '')}::text[]))`;
  const hashes = new Map(stored.map((s) => [messageKey(s.advertiser_id, s.kind, s.message_id), s.h]));
  for (const i of toCheck) {
    const { advertiserId, message } = items[i] as CommitItem & { message: MessageRef };
    if (hashes.get(messageKey(advertiserId, message.kind, message.id)) !== message.hashHex) {
      outcomes[i] = { kind: 'conflict', message: `${message.kind === 'webhook' ? 'webhook-id' : 'jti'} was already used for different content` };
    }
  }
  return inserted;
}

type ScoredItem = CommitItem & { score: ScoreResult };

async function insertConversions(tx: TxSql, rows: ScoredItem[]): Promise<Map<string, Date>> {
  if (rows.length === 0) return new Map();
  const col = <T>(f: (r: ScoredItem) => T) => rows.map(f);
  const inserted = await tx<{ id: string; created_at: Date }[]>`
    with input as (
    select * from unnest(${col((r) => r.conversionId)}::text[], ${col((r) => r.advertiserId)}::text[], ${col((r) => r.offerId)}::text[],
                ${col((r) => r.publisherId)}::text[], ${col((r) => r.clickId)}::text[], ${col((r) => r.clickCreatedAt.toISOString())}::timestamptz[],
                ${col((r) => r.txid)}::text[], ${col((r) => r.event)}::text[], ${col((r) => r.status)}::text[],
                ${col((r) => r.subs[0] ?? null)}::text[], ${col((r) => r.subs[1] ?? null)}::text[], ${col((r) => r.subs[2] ?? null)}::text[],
                ${col((r) => r.subs[3] ?? null)}::text[], ${col((r) => r.subs[4] ?? null)}::text[],
                ${col((r) => r.payoutMinor.toString())}::bigint[], ${col((r) => r.revenueMinor.toString())}::bigint[],
                ${col((r) => r.amountMinor?.toString() ?? null)}::bigint[], ${col((r) => r.currency)}::text[], ${col((r) => r.score.decision)}::text[],
                ${col((r) => r.score.score)}::smallint[], ${col((r) => JSON.stringify(r.score.reasons))}::text[],
                ${col((r) => JSON.stringify(r.score.evidence))}::text[], ${col((r) => r.userIp)}::inet[], ${col((r) => r.userAgent)}::text[],
                ${col((r) => r.sourceIp)}::inet[], ${col((r) => r.receivedAt.toISOString())}::timestamptz[])
      as u(id, adv, off, pub, clk, clk_at, txid, ev, st, s1, s2, s3, s4, s5, payout, revenue, amount, cur, dec, score, reasons, evidence, uip, uua, sip, at)
    ),
    -- Unique across conversions' partitions (as in commit-fresh.ts): only a claimed txid gets a conversion.
    claimed as (
      insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
      select adv, txid, id, at from input
      on conflict (advertiser_id, txid) do nothing
      returning conversion_id
    )
    insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
      sub1, sub2, sub3, sub4, sub5, payout_minor, revenue_minor, amount_minor, currency, decision, score, reasons, evidence, source, user_ip, user_agent, source_ip,
      created_at)
    select id, adv, off, pub, clk, clk_at, txid, ev, st, s1, s2, s3, s4, s5, payout, revenue, amount, cur, dec, score,
           array(select jsonb_array_elements_text(reasons::jsonb)), evidence::jsonb, 's2s', uip, uua, sip, at
    from input join claimed on claimed.conversion_id = input.id
    returning id, created_at`;
  return new Map(inserted.map((r) => [r.id, r.created_at]));
}

/**
 * `at` is when the change was received; a history row is never dated before its conversion (a node
 * whose clock is behind), since lookups by conversion read the partitions from the conversion's day on.
 */
export type HistoryRow = {
  conversion: { id: string; createdAt: Date; advertiserId: string };
  from: string | null;
  to: string;
  payoutMinor: bigint;
  currency: string;
  source?: string;
  at: Date;
};

export async function insertHistory(tx: TxSql, rows: HistoryRow[]): Promise<void> {
  await tx`insert into conversion_status_history (conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
    select id, adv, f, t, payout, cur, src, greatest(at, conversion_at)
    from unnest(${rows.map((r) => r.conversion.id)}::text[], ${rows.map((r) => r.conversion.advertiserId)}::text[],
                ${rows.map((r) => r.from)}::text[], ${rows.map((r) => r.to)}::text[],
                ${rows.map((r) => r.payoutMinor.toString())}::bigint[], ${rows.map((r) => r.currency)}::text[],
                ${rows.map((r) => r.source ?? 's2s')}::text[], ${rows.map((r) => r.at.toISOString())}::timestamptz[],
                ${rows.map((r) => r.conversion.createdAt.toISOString())}::timestamptz[]) as u(id, adv, f, t, payout, cur, src, at, conversion_at)`;
}

/** The first history row of each conversion created just before in this transaction (joined by ID). */
function insertFirstHistory(tx: TxSql, rows: ScoredItem[]) {
  return tx`insert into conversion_status_history (conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
    select u.id, c.advertiser_id, null, u.st, u.payout, u.cur, 's2s', c.created_at
    from unnest(${rows.map((r) => r.conversionId)}::text[], ${rows.map((r) => r.status)}::text[],
                ${rows.map((r) => r.payoutMinor.toString())}::bigint[], ${rows.map((r) => r.currency)}::text[],
                ${rows.map((r) => r.receivedAt.toISOString())}::timestamptz[]) as u(id, st, payout, cur, at)
    join conversions c on c.id = u.id and c.created_at = u.at`;
}

async function lockExisting(tx: TxSql, rows: CommitItem[]): Promise<Map<string, Existing>> {
  if (onCitus()) return lockExistingPerAdvertiser(tx, rows);
  // Through the txid key to the conversion's own partition (its time is in the key's row).
  const found = await tx<Existing[]>`
    select c.id, c.created_at, c.advertiser_id, c.txid, c.click_id, c.payout_minor, c.currency, c.status, c.decision, c.reasons, c.source, c.review_state
    from conversion_txids t
    join conversions c on c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
    where (t.advertiser_id, t.txid) in (select * from unnest(${rows.map((r) => r.advertiserId)}::text[], ${rows.map((r) => r.txid)}::text[]))
    order by t.advertiser_id, t.txid
    for update of c`;
  return new Map(found.map((f) => [key(f.advertiser_id, f.txid), f]));
}

/**
 * lockExisting on Citus, which takes FOR UPDATE only in a query on one shard: one statement per
 * advertiser (its shard), in advertiser order, so concurrent groups still lock in one order.
 */
async function lockExistingPerAdvertiser(tx: TxSql, rows: CommitItem[]): Promise<Map<string, Existing>> {
  const txidsOf = new Map<string, string[]>();
  for (const r of rows) txidsOf.set(r.advertiserId, [...(txidsOf.get(r.advertiserId) ?? []), r.txid]);
  const found = new Map<string, Existing>();
  for (const advertiserId of [...txidsOf.keys()].sort()) {
    const locked = await tx<Existing[]>`
      select c.id, c.created_at, c.advertiser_id, c.txid, c.click_id, c.payout_minor, c.currency, c.status, c.decision, c.reasons, c.source, c.review_state
      from conversion_txids t
      join conversions c on c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
      where t.advertiser_id = ${advertiserId} and c.advertiser_id = ${advertiserId} and t.txid = any(${txidsOf.get(advertiserId) ?? []}::text[])
      order by t.txid
      for update of c`;
    for (const f of locked) found.set(key(f.advertiser_id, f.txid), f);
  }
  return found;
}

const conversionOf = (found: Existing) => ({ id: found.id, createdAt: found.created_at, advertiserId: found.advertiser_id });

async function resolveRepeat(tx: TxSql, item: CommitItem, found: Existing, refireWindowS: number): Promise<CommitOutcome> {
  const same = { conversionId: found.id, decision: found.decision, reasons: found.reasons };
  if (found.click_id !== item.clickId) return { kind: 'conflict', conversionId: found.id, message: 'this txid was recorded for a different click' };
  if (found.source === 'pixel') {
    if (!item.score) return { kind: 'conflict', conversionId: found.id, message: 'this conversion changed meanwhile; retry the postback' };
    return completeRecovered(tx, item, item.score, found, refireWindowS);
  }
  if (found.payout_minor !== item.payoutMinor || found.currency !== item.currency) {
    return { kind: 'conflict', conversionId: found.id, message: 'this txid was recorded with a different payout or currency' };
  }
  if (found.status === item.status) return { kind: 'duplicate', ...same, status: found.status };
  if (!ALLOWED_TRANSITIONS.has(`${found.status}>${item.status}`)) {
    return { kind: 'conflict', conversionId: found.id, message: `status cannot change from ${found.status} to ${item.status}` };
  }
  await tx`update conversions set status = ${item.status}, updated_at = now() where id = ${found.id} and created_at = ${found.created_at}`;
  await insertHistory(tx, [{ conversion: conversionOf(found), from: found.status, to: item.status, payoutMinor: item.payoutMinor, currency: item.currency, at: item.receivedAt }]);
  // Under the row lock taken above: a concurrent copy of this change waits, then meets the new status as a duplicate.
  await enqueueStatusChange(tx, conversionOf(found), item.status);
  return { kind: 'status_changed', ...same, status: item.status };
}

/**
 * A conversion recovered from a pixel (the S2S postback was missing) meets its late S2S postback:
 * the S2S facts replace the pixel's guesses and its score replaces `s2s_missing`, unless an analyst
 * already decided, and the publisher is notified if it now qualifies and was not yet.
 */
async function completeRecovered(tx: TxSql, item: CommitItem, score: ScoreResult, found: Existing, refireWindowS: number): Promise<CommitOutcome> {
  const reviewed = found.review_state !== 'none';
  const decision = reviewed ? found.decision : score.decision;
  const reasons = reviewed ? found.reasons : score.reasons;
  await tx`update conversions set source = 's2s', status = ${item.status}, payout_minor = ${item.payoutMinor}, currency = ${item.currency},
      event = ${item.event}, decision = ${decision}, score = ${reviewed ? tx`score` : score.score}, reasons = ${reasons},
      evidence = ${reviewed ? tx`evidence` : tx.json(score.evidence as never)}, user_ip = coalesce(${item.userIp}::inet, user_ip),
      user_agent = coalesce(${item.userAgent}, user_agent), source_ip = ${item.sourceIp}, updated_at = now()
    where id = ${found.id} and created_at = ${found.created_at}`;
  await insertHistory(tx, [{ conversion: conversionOf(found), from: found.status, to: item.status, payoutMinor: item.payoutMinor, currency: item.currency, at: item.receivedAt }]);
  const qualifies = reviewed ? found.review_state === 'approved' && item.status !== 'rejected' : releasesDelivery(decision, item.status);
  const has = await hasDelivery(tx, conversionOf(found));
  // The deadline counts from the conversion's own time (a recovered one is dated at its pixel).
  if (qualifies && !has) await enqueueDeliveriesOf(tx, [conversionOf(found)], refireWindowS);
  // Already sent (an analyst released the pixel conversion) and the S2S postback brings a later status;
  // a pixel's guess corrected backwards is not a change the publisher is told of (changes only go forward).
  else if (has && ALLOWED_TRANSITIONS.has(`${found.status}>${item.status}`)) await enqueueStatusChange(tx, conversionOf(found), item.status);
  return { kind: 'completed', conversionId: found.id, decision, reasons, status: item.status };
}

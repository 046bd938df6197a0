import type { TxSql } from '../db/database.js';
import { formatMoney } from '../money.js';
import type { Cap } from '../offers/terms.js';
import { commitBatch, type CommitItem, type CommitOutcome } from './commit-batch.js';
import type { Decision, ScoreResult } from './types.js';

/**
 * Caps that hold across nodes (CONTRACT §10). A postback for a capped offer commits in its own
 * transaction that first locks the usage rows of every cap it falls under (offer_cap_usage, one row per
 * cap and UTC period), then decides, writes the conversion and adds itself to the usage, and commits.
 * Every node's postbacks for that offer queue on the same row locks, so each sees what the one before
 * it counted: no more than the cap can be accepted, however many arrive at once. The price is that
 * one offer's capped postbacks commit one at a time (see the caps bench for what that costs).
 *
 * What a slot is: a conversion committed as accepted or flagged with status approved or pending. A
 * postback that is rejected (by its status or by fraud) takes none; a later status change or an
 * analyst's rejection does not give a slot back, so the cap errs on the side of paying less.
 */

type CapUsage = { cap_key: string; scope_id: string; conversions: bigint; payout_minor: bigint };

type Applied = { cap: Cap; periodStart: string; window: string; scopeId: string };

export function capsApply(item: CommitItem): boolean {
  return item.score !== undefined && item.caps.some((c) => c.event === undefined || c.event === item.event);
}

export async function commitCapped(tx: TxSql, item: CommitItem, refireWindowS: number): Promise<CommitOutcome> {
  const score = item.score;
  const applied = item.caps.filter((c) => c.event === undefined || c.event === item.event).map((cap) => applyTo(cap, item));
  if (!score || applied.length === 0 || !takesSlot(score.decision, item.status)) return only(await commitBatch(tx, [item], refireWindowS));

  const ordered = [...applied].sort((a, b) => compare(rowKey(a), rowKey(b)));
  const rows = {
    key: ordered.map((a) => a.cap.key),
    period: ordered.map((a) => a.periodStart),
    scope: ordered.map((a) => a.scopeId),
  };
  await tx`
    insert into offer_cap_usage (offer_id, cap_key, period_start, scope_id)
    select ${item.offerId}, k, p, s from unnest(${rows.key}::text[], ${rows.period}::date[], ${rows.scope}::text[]) as u(k, p, s)
    order by k, s
    on conflict do nothing`;
  const usage = await tx<CapUsage[]>`
    select cap_key, scope_id, conversions, payout_minor from offer_cap_usage
    where offer_id = ${item.offerId}
      and (cap_key, period_start, scope_id) in (select * from unnest(${rows.key}::text[], ${rows.period}::date[], ${rows.scope}::text[]))
    order by cap_key, scope_id
    for update`;
  // Under the locks: a txid another node committed meanwhile is now visible, and is a retry or a
  // status change, never a second slot.
  const [existing] = await tx`select 1 from conversions where advertiser_id = ${item.advertiserId} and txid = ${item.txid}`;
  if (existing) return only(await commitBatch(tx, [{ ...item, score: undefined }], refireWindowS));

  const used = new Map(usage.map((u) => [`${u.cap_key}\u0000${u.scope_id}`, u]));
  const over = ordered.flatMap((a) => {
    const u = used.get(`${a.cap.key}\u0000${a.scopeId}`);
    const conversions = u?.conversions ?? 0n;
    const payout = u?.payout_minor ?? 0n;
    const countsPayout = item.currency === a.cap.currency;
    const overCount = a.cap.conversions !== undefined && conversions + 1n > BigInt(a.cap.conversions);
    const overPayout = a.cap.payoutMinor !== undefined && countsPayout && payout + item.payoutMinor > a.cap.payoutMinor;
    return overCount || overPayout ? [{ applied: a, conversions, payout }] : [];
  });

  const committed = over.length === 0 ? item : { ...item, score: overCapScore(score, over, item.payoutMinor) };
  const outcome = only(await commitBatch(tx, [committed], refireWindowS));
  if (over.length === 0 && outcome.kind === 'created') {
    const payouts = ordered.map((a) => (item.currency === a.cap.currency ? item.payoutMinor.toString() : '0'));
    await tx`
      update offer_cap_usage u set conversions = u.conversions + 1, payout_minor = u.payout_minor + v.p
      from unnest(${rows.key}::text[], ${rows.period}::date[], ${rows.scope}::text[], ${payouts}::bigint[]) as v(k, d, s, p)
      where u.offer_id = ${item.offerId} and u.cap_key = v.k and u.period_start = v.d and u.scope_id = v.s`;
  }
  return outcome;
}

function takesSlot(decision: Decision, status: string): boolean {
  return decision !== 'rejected' && status !== 'rejected';
}

function applyTo(cap: Cap, item: CommitItem): Applied {
  const day = item.receivedAt.toISOString().slice(0, 10);
  const periodStart = cap.period === 'day' ? day : `${day.slice(0, 7)}-01`;
  return {
    cap,
    periodStart,
    window: cap.period === 'day' ? `UTC day ${day}` : `UTC month ${day.slice(0, 7)}`,
    scopeId: cap.per === 'publisher' ? item.publisherId : '',
  };
}

function overCapScore(score: ScoreResult, over: { applied: Applied; conversions: bigint; payout: bigint }[], payoutMinor: bigint): ScoreResult {
  const rejects = over.some((o) => o.applied.cap.action === 'reject');
  const decision: Decision = rejects || score.decision === 'rejected' ? 'rejected' : 'flagged';
  const evidence = over.map(({ applied: { cap, window, scopeId }, conversions, payout }) => ({
    code: 'over_cap',
    category: 'integrity',
    mode: 'score',
    evaluated: true,
    fired: true,
    points: 0,
    value: {
      conversions: Number(conversions),
      ...(cap.payoutMinor !== undefined ? { payout: formatMoney(payout, cap.currency), thisPayout: formatMoney(payoutMinor, cap.currency) } : {}),
    },
    threshold: {
      ...(cap.conversions !== undefined ? { conversions: cap.conversions } : {}),
      ...(cap.payoutMinor !== undefined ? { payout: formatMoney(cap.payoutMinor, cap.currency), currency: cap.currency } : {}),
      action: cap.action,
    },
    window,
    scope: cap.per === 'publisher' ? `publisher ${scopeId}${cap.event ? `, event ${cap.event}` : ''}` : `offer${cap.event ? `, event ${cap.event}` : ''}`,
    note: `cap ${cap.key} is used up for this period`,
  }));
  return { ...score, decision, reasons: [...score.reasons, 'over_cap'], evidence: [...score.evidence, ...evidence] };
}

function only(outcomes: CommitOutcome[]): CommitOutcome {
  const [outcome] = outcomes;
  if (!outcome) throw new Error('commitBatch returned no outcome for its one item');
  return outcome;
}

const rowKey = (a: Applied) => `${a.cap.key}\u0000${a.scopeId}`;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

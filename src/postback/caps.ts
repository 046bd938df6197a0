import type { TxSql } from '../db/database.js';
import { formatMoney } from '../money.js';
import type { Cap } from '../offers/terms.js';
import { commitBatch, type CommitItem, type CommitOutcome } from './commit-batch.js';
import type { Decision, ScoreResult } from './types.js';

/**
 * Caps that hold across nodes (CONTRACT §10). A group's postbacks for a capped offer commit in one
 * transaction that first locks the usage rows of every cap they fall under (offer_cap_usage, one row
 * per cap and UTC period), then decides them in order, writes the conversions, adds them to the usage
 * and commits. Every node's groups for that offer queue on the same row locks, so each sees what the
 * one before it counted: no more than the cap can be accepted, however many arrive at once. The price
 * is that one offer's capped groups commit one at a time; a node sends them one at a time too
 * (cap-lanes.ts), so a busy offer's postbacks share each lock hold.
 *
 * What a slot is: a conversion committed as accepted or flagged with status approved or pending. A
 * postback that is rejected (by its status or by fraud) takes none; a later status change or an
 * analyst's rejection does not give a slot back, so the cap errs on the side of paying less.
 */

type CapUsage = { cap_key: string; period_start: string; scope_id: string; conversions: bigint; payout_minor: bigint };

type Applied = { cap: Cap; periodStart: string; window: string; scopeId: string };

/** The caps a postback falls under: those of every event and those of its own. */
function capsFor(item: CommitItem): Cap[] {
  return item.caps.filter((c) => c.event === undefined || c.event === item.event);
}

export function capsApply(item: CommitItem): boolean {
  return item.score !== undefined && capsFor(item).length > 0;
}

/**
 * Commits one offer's capped postbacks of a group in one transaction: the usage rows are locked once
 * and the postbacks decided one after another in arrival order against what the earlier ones took,
 * so a burst shares one lock hold (and one connection) instead of queueing one transaction each.
 * A txid repeated inside the group is left out (returned in `deferred`) for a later transaction.
 */
export async function commitCapped(
  tx: TxSql,
  items: readonly CommitItem[],
  refireWindowS: number,
): Promise<{ outcomes: Map<CommitItem, CommitOutcome>; deferred: CommitItem[] }> {
  const seen = new Set<string>();
  const deferred: CommitItem[] = [];
  const group: CommitItem[] = [];
  for (const item of items) {
    const k = `${item.advertiserId}\u0000${item.txid}`;
    if (seen.has(k)) deferred.push(item);
    else {
      seen.add(k);
      group.push(item);
    }
  }
  const offerId = group[0]?.offerId;
  if (offerId === undefined || group.some((i) => i.offerId !== offerId)) throw new Error('commitCapped takes the postbacks of one offer');

  const appliedOf = new Map(group.map((item) => [item, capsFor(item).map((cap) => applyTo(cap, item))]));
  const rowsByKey = new Map<string, Applied>();
  for (const applied of appliedOf.values()) for (const a of applied) rowsByKey.set(rowKey(a), a);
  const ordered = [...rowsByKey.values()].sort((a, b) => compare(rowKey(a), rowKey(b)));
  const rows = { key: ordered.map((a) => a.cap.key), period: ordered.map((a) => a.periodStart), scope: ordered.map((a) => a.scopeId) };
  // One round trip: postgres.js pipelines the three, and PostgreSQL runs them in order, each with a
  // snapshot taken after the one before finished. So the lock is held before the txids are read, and
  // a txid another node committed meanwhile is visible: a retry or a status change, never a second slot.
  const [, usage, existing] = await Promise.all([
    tx`
      insert into offer_cap_usage (offer_id, cap_key, period_start, scope_id)
      select ${offerId}, k, p, s from unnest(${rows.key}::text[], ${rows.period}::date[], ${rows.scope}::text[]) as u(k, p, s)
      order by k, p, s
      on conflict do nothing`,
    tx<CapUsage[]>`
      select cap_key, period_start::text as period_start, scope_id, conversions, payout_minor from offer_cap_usage
      where offer_id = ${offerId}
        and (cap_key, period_start, scope_id) in (select * from unnest(${rows.key}::text[], ${rows.period}::date[], ${rows.scope}::text[]))
      order by cap_key, period_start, scope_id
      for update`,
    tx<{ txid: string }[]>`
      select txid from conversion_txids
      where advertiser_id = ${group[0]!.advertiserId} and txid = any(${group.map((i) => i.txid)}::text[])`,
  ]);
  const exists = new Set(existing.map((e) => e.txid));

  const used = new Map(usage.map((u) => [`${u.cap_key}\u0000${u.period_start}\u0000${u.scope_id}`, { conversions: u.conversions, payout: u.payout_minor }]));
  const taken = new Map<string, { conversions: bigint; payout: bigint }>();
  const slotHolders = new Set<CommitItem>();
  const committed = group.map((item) => {
    if (exists.has(item.txid)) return { ...item, score: undefined };
    const score = item.score;
    if (!score || !takesSlot(score.decision, item.status)) return item;
    const applied = appliedOf.get(item) ?? [];
    const over = applied.flatMap((a) => {
      const u = used.get(rowKey(a)) ?? { conversions: 0n, payout: 0n };
      const countsPayout = item.currency === a.cap.currency;
      const overCount = a.cap.conversions !== undefined && u.conversions + 1n > BigInt(a.cap.conversions);
      const overPayout = a.cap.payoutMinor !== undefined && countsPayout && u.payout + item.payoutMinor > a.cap.payoutMinor;
      return overCount || overPayout ? [{ applied: a, conversions: u.conversions, payout: u.payout }] : [];
    });
    if (over.length > 0) return { ...item, score: overCapScore(score, over, item.payoutMinor) };
    for (const a of applied) {
      const k = rowKey(a);
      const payout = item.currency === a.cap.currency ? item.payoutMinor : 0n;
      const u = used.get(k) ?? { conversions: 0n, payout: 0n };
      used.set(k, { conversions: u.conversions + 1n, payout: u.payout + payout });
      const t = taken.get(k) ?? { conversions: 0n, payout: 0n };
      taken.set(k, { conversions: t.conversions + 1n, payout: t.payout + payout });
    }
    slotHolders.add(item);
    return item;
  });

  // The usage update goes out in the same round trip as the conversions, counting every slot holder;
  // the rare one that was not created after all is given back by a second update.
  const [results] = await Promise.all([commitBatch(tx, committed, refireWindowS), addUsage(tx, offerId, ordered, taken)]);
  const givenBack = new Map<string, { conversions: bigint; payout: bigint }>();
  for (const [i, item] of group.entries()) {
    if (!slotHolders.has(item) || results[i]?.kind === 'created') continue;
    for (const a of appliedOf.get(item) ?? []) {
      const g = givenBack.get(rowKey(a)) ?? { conversions: 0n, payout: 0n };
      givenBack.set(rowKey(a), { conversions: g.conversions - 1n, payout: g.payout - (item.currency === a.cap.currency ? item.payoutMinor : 0n) });
    }
  }
  if (givenBack.size > 0) await addUsage(tx, offerId, ordered, givenBack);
  const outcomes = new Map<CommitItem, CommitOutcome>();
  group.forEach((item, i) => {
    const outcome = results[i];
    if (!outcome) throw new Error('commitBatch returned fewer outcomes than items');
    outcomes.set(item, outcome);
  });
  return { outcomes, deferred };
}

/** Adds each row's delta (negative to give slots back) to the locked usage rows. */
async function addUsage(tx: TxSql, offerId: string, rows: Applied[], delta: Map<string, { conversions: bigint; payout: bigint }>): Promise<void> {
  const changed = rows.filter((a) => (delta.get(rowKey(a))?.conversions ?? 0n) !== 0n);
  if (changed.length === 0) return;
  await tx`
    update offer_cap_usage u set conversions = u.conversions + v.n, payout_minor = u.payout_minor + v.p
    from unnest(${changed.map((a) => a.cap.key)}::text[], ${changed.map((a) => a.periodStart)}::date[], ${changed.map((a) => a.scopeId)}::text[],
                ${changed.map((a) => delta.get(rowKey(a))!.conversions.toString())}::bigint[],
                ${changed.map((a) => delta.get(rowKey(a))!.payout.toString())}::bigint[]) as v(k, d, s, n, p)
    where u.offer_id = ${offerId} and u.cap_key = v.k and u.period_start = v.d and u.scope_id = v.s`;
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


const rowKey = (a: Applied) => `${a.cap.key}\u0000${a.periodStart}\u0000${a.scopeId}`;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

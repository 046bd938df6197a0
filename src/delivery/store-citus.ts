import type { Sql } from '../db/database.js';
import type { ClaimedDelivery, ClaimParams, ConversionMacroColumns, LeaseOneResult } from './store.js';

/**
 * The worker's claim, lease and wake-up statements in the form Citus runs (store.ts picks these on
 * a Citus coordinator; on PostgreSQL nothing here runs). Deliveries are sharded by publisher and
 * conversions by advertiser, so the single-statement forms cannot work there: Citus takes FOR
 * UPDATE SKIP LOCKED only in a query on one shard, recursive CTEs (the skip scan of publishers)
 * only on one shard, and an UPDATE joined to a table sharded by another key not at all. Instead:
 * one multi-shard aggregate finds the publishers with due rows (oldest due first), each publisher's
 * claim is a single-shard UPDATE (the same lease as store.ts), and the claimed rows' conversions are
 * read afterwards by id. Same guarantees: a row is leased by one worker at a time, a claim only sets
 * the lease, a crashed worker's rows are due again when its lease runs out.
 */

const DUE = `d.state in ('pending', 'failed') and d.next_attempt_at <= now() and d.deadline_at > now()
  and (d.lease_until is null or d.lease_until <= now())`;

type LeasedRow = { id: string; publisher_id: string; state: ClaimedDelivery['state']; attempts: number; deadline_at: Date; conversion_id: string; status: string | null };
type ConversionRow = ConversionMacroColumns & { id: string; status: string };

export async function claimDueSharded(sql: Sql, p: ClaimParams): Promise<ClaimedDelivery[]> {
  const publishers = await sql<{ publisher_id: string }[]>`
    select d.publisher_id from deliveries d join publishers p on p.id = d.publisher_id and p.disabled_at is null
    where ${sql.unsafe(DUE)}
    group by d.publisher_id order by min(d.next_attempt_at) limit ${p.want}`;
  const rooms = new Map(p.limitIds.map((id, i) => [id, p.limitRooms[i] ?? 0]));
  let left = p.want;
  const claims: Promise<LeasedRow[]>[] = [];
  for (const { publisher_id } of publishers) {
    const take = Math.min(rooms.get(publisher_id) ?? p.perPublisher, left);
    if (take <= 0) continue;
    left -= take;
    claims.push(sql<LeasedRow[]>`
      update deliveries d
      set lease_until = now() + ${p.leaseMs}::float8 * interval '1 millisecond', leased_by = ${p.workerId}, updated_at = now()
      where d.publisher_id = ${publisher_id} and d.id = any(array(
        select d.id from deliveries d where d.publisher_id = ${publisher_id} and ${sql.unsafe(DUE)}
        order by d.next_attempt_at limit ${take}
        for update skip locked))
      returning d.id, d.publisher_id, d.state, d.attempts, d.deadline_at, d.conversion_id, d.status`);
    if (left === 0) break;
  }
  const leased = (await Promise.all(claims)).flat();
  return withConversions(sql, leased);
}

export async function leaseOneSharded(sql: Sql, id: string, workerId: string, leaseMs: number): Promise<LeaseOneResult> {
  const [current] = await sql<{ in_flight: boolean; disabled: boolean }[]>`
    select coalesce(d.lease_until > now(), false) as in_flight, p.disabled_at is not null as disabled
    from deliveries d join publishers p on p.id = d.publisher_id where d.id = ${id}`;
  if (!current) return { kind: 'not_found' };
  if (current.disabled) return { kind: 'publisher_disabled' };
  if (current.in_flight) return { kind: 'in_flight' };
  const leased = await sql<LeasedRow[]>`
    update deliveries d
    set lease_until = now() + ${leaseMs}::float8 * interval '1 millisecond', leased_by = ${workerId}, updated_at = now()
    where d.id = ${id} and (d.lease_until is null or d.lease_until <= now())
    returning d.id, d.publisher_id, d.state, d.attempts, d.deadline_at, d.conversion_id, d.status`;
  const [delivery] = await withConversions(sql, leased);
  return delivery ? { kind: 'leased', delivery } : { kind: 'in_flight' };
}

export async function msUntilNextDueSharded(sql: Sql, skipPublishers: string[]): Promise<number | undefined> {
  const [row] = await sql<{ ms: number | null }[]>`
    select (extract(epoch from min(d.next_attempt_at) - now()) * 1000)::float8 as ms
    from deliveries d join publishers p on p.id = d.publisher_id and p.disabled_at is null
    where d.state in ('pending', 'failed') and d.deadline_at > now()
      and (d.lease_until is null or d.lease_until <= now())
      and d.publisher_id <> all(${skipPublishers}::text[])`;
  return row?.ms ?? undefined;
}

/** The leased rows with their conversions' fields; a row whose conversion is gone is not returned (as in store.ts). */
async function withConversions(sql: Sql, leased: LeasedRow[]): Promise<ClaimedDelivery[]> {
  if (leased.length === 0) return [];
  const conversions = await sql<ConversionRow[]>`
    select id, click_id, txid, event, status, payout_minor, currency, offer_id, sub1, sub2, sub3, sub4, sub5
    from conversions where id = any(${leased.map((d) => d.conversion_id)}::text[])`;
  const byId = new Map(conversions.map((c) => [c.id, c]));
  return leased.flatMap((d) => {
    const c = byId.get(d.conversion_id);
    if (!c) return [];
    return [
      {
        id: d.id,
        publisherId: d.publisher_id,
        state: d.state,
        attempts: d.attempts,
        deadlineAt: d.deadline_at,
        conversion: {
          conversionId: c.id,
          clickId: c.click_id,
          txid: c.txid,
          event: c.event,
          status: d.status ?? c.status,
          payoutMinor: c.payout_minor,
          currency: c.currency.trim(),
          offerId: c.offer_id,
          subs: [c.sub1, c.sub2, c.sub3, c.sub4, c.sub5],
        },
      },
    ];
  });
}

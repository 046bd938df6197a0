import type { Sql, TxSql } from '../db/database.js';
import type { ConversionFields } from './message.js';

/**
 * The worker's SQL, one function per statement. Every statement commits on its own: no transaction
 * is ever open while an HTTP request is in flight.
 *
 * Claiming moves `next_attempt_at` to the end of the lease, so "due" is just `next_attempt_at <= now()`:
 * a claimed row leaves the due set, and a crashed worker's row re-enters it when its lease runs out.
 * Invariant for unclaimed open rows: next_attempt_at <= deadline_at, so the sweep expires them on time.
 */

type Db = Sql | TxSql;

export type ClaimedDelivery = {
  id: string;
  publisherId: string;
  state: 'pending' | 'failed' | 'delivered' | 'expired';
  attempts: number;
  conversion: ConversionFields;
};

export type AttemptRecord = {
  deliveryId: string;
  attemptedAt: Date;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  snippet: string | null;
  replay: boolean;
};

export type ClaimParams = {
  workerId: string;
  leaseMs: number;
  want: number;
  /** Rows locked and ranked per publisher before `want` are kept: lets a busy publisher's backlog be skipped. */
  scan: number;
  perPublisher: number;
  /** Publishers with less room than `perPublisher` (0 = skip entirely). */
  limitIds: string[];
  limitRooms: number[];
};

const CLAIMED_COLUMNS = `d.id, d.publisher_id, d.state, d.attempts, c.id as conversion_id, c.click_id, c.txid, c.event, c.status,
  c.payout_minor, c.currency, c.offer_id, c.sub1, c.sub2, c.sub3, c.sub4, c.sub5`;

type ClaimedRow = {
  id: string;
  publisher_id: string;
  state: ClaimedDelivery['state'];
  attempts: number;
  conversion_id: string;
  click_id: string;
  txid: string;
  event: string;
  status: string;
  payout_minor: bigint;
  currency: string;
  offer_id: string;
  sub1: string | null;
  sub2: string | null;
  sub3: string | null;
  sub4: string | null;
  sub5: string | null;
};

function toClaimed(r: ClaimedRow): ClaimedDelivery {
  return {
    id: r.id,
    publisherId: r.publisher_id,
    state: r.state,
    attempts: r.attempts,
    conversion: {
      conversionId: r.conversion_id,
      clickId: r.click_id,
      txid: r.txid,
      event: r.event,
      status: r.status,
      payoutMinor: r.payout_minor,
      currency: r.currency.trim(),
      offerId: r.offer_id,
      subs: [r.sub1, r.sub2, r.sub3, r.sub4, r.sub5],
    },
  };
}

/** Claims up to `want` due deliveries of enabled publishers, at most each publisher's room, oldest due first. */
export async function claimDue(sql: Sql, p: ClaimParams): Promise<ClaimedDelivery[]> {
  const skip = p.limitIds.filter((_, i) => p.limitRooms[i] === 0);
  const rows = await sql<ClaimedRow[]>`
    with candidates as (
      select d.id, d.publisher_id, d.next_attempt_at
      from deliveries d
      join publishers p on p.id = d.publisher_id
      where d.state in ('pending', 'failed')
        and d.next_attempt_at <= now()
        and d.deadline_at > now()
        and p.disabled_at is null
        and d.publisher_id <> all(${sql.array(skip)}::text[])
      order by d.next_attempt_at
      limit ${p.scan}
      for update of d skip locked
    ), ranked as (
      select c.id, c.next_attempt_at,
             row_number() over (partition by c.publisher_id order by c.next_attempt_at) as rn,
             coalesce(l.room, ${p.perPublisher}) as room
      from candidates c
      left join unnest(${sql.array(p.limitIds)}::text[], ${sql.array(p.limitRooms)}::int[]) as l(publisher_id, room)
        on l.publisher_id = c.publisher_id
    ), chosen as (
      select id from ranked where rn <= room order by next_attempt_at limit ${p.want}
    )
    update deliveries d
    set next_attempt_at = now() + ${p.leaseMs}::float8 * interval '1 millisecond',
        lease_until = now() + ${p.leaseMs}::float8 * interval '1 millisecond',
        leased_by = ${p.workerId},
        updated_at = now()
    from chosen, conversions c
    where d.id = chosen.id and c.id = d.conversion_id
    returning ${sql.unsafe(CLAIMED_COLUMNS)}`;
  return rows.map(toClaimed);
}

export type LeaseOneResult =
  | { kind: 'leased'; delivery: ClaimedDelivery }
  | { kind: 'not_found' }
  | { kind: 'in_flight' }
  | { kind: 'publisher_disabled' };

/** Leases one delivery in any state for a replay, unless an attempt on it is in flight right now. */
export async function leaseOne(sql: Sql, id: string, workerId: string, leaseMs: number): Promise<LeaseOneResult> {
  const [current] = await sql<{ in_flight: boolean; disabled: boolean }[]>`
    select coalesce(d.lease_until > now(), false) as in_flight, p.disabled_at is not null as disabled
    from deliveries d join publishers p on p.id = d.publisher_id where d.id = ${id}`;
  if (!current) return { kind: 'not_found' };
  if (current.disabled) return { kind: 'publisher_disabled' };
  if (current.in_flight) return { kind: 'in_flight' };
  const rows = await sql<ClaimedRow[]>`
    update deliveries d
    set lease_until = now() + ${leaseMs}::float8 * interval '1 millisecond',
        leased_by = ${workerId},
        next_attempt_at = case when d.state in ('pending', 'failed')
                               then now() + ${leaseMs}::float8 * interval '1 millisecond' else d.next_attempt_at end,
        updated_at = now()
    from conversions c
    where d.id = ${id} and c.id = d.conversion_id and (d.lease_until is null or d.lease_until <= now())
    returning ${sql.unsafe(CLAIMED_COLUMNS)}`;
  const row = rows[0];
  return row ? { kind: 'leased', delivery: toClaimed(row) } : { kind: 'in_flight' };
}

/** A 2xx: delivered, whoever holds the lease now (delivered is final and true). One statement, so atomic. */
export async function recordDelivered(db: Db, a: AttemptRecord): Promise<void> {
  await db`
    with attempt as (
      insert into delivery_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_snippet, replay)
      values (${a.deliveryId}, ${a.attemptedAt}, ${a.statusCode}, ${a.latencyMs}, ${a.error}, ${a.snippet}, ${a.replay})
    )
    update deliveries
    set state = 'delivered', attempts = attempts + 1, delivered_at = coalesce(delivered_at, now()),
        last_status_code = ${a.statusCode}, last_error = null, lease_until = null, leased_by = null, updated_at = now()
    where id = ${a.deliveryId}`;
}

/**
 * A failed try. Only the lease holder reschedules (a worker whose lease ran out must not undo the
 * newer holder's state); a delivered or expired row keeps its state (a failed replay changes nothing).
 */
export async function recordFailed(db: Db, workerId: string, a: AttemptRecord, delayMs: number): Promise<void> {
  await db`
    with attempt as (
      insert into delivery_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_snippet, replay)
      values (${a.deliveryId}, ${a.attemptedAt}, ${a.statusCode}, ${a.latencyMs}, ${a.error}, ${a.snippet}, ${a.replay})
    )
    update deliveries
    set attempts = attempts + 1,
        last_status_code = case when state = 'delivered' then last_status_code else ${a.statusCode}::int end,
        last_error = case when state = 'delivered' then last_error else ${a.error}::text end,
        state = case when leased_by = ${workerId} and state in ('pending', 'failed') then 'failed' else state end,
        next_attempt_at = case when leased_by = ${workerId} and state in ('pending', 'failed')
                               then least(now() + ${delayMs}::float8 * interval '1 millisecond', deadline_at)
                               else next_attempt_at end,
        lease_until = case when leased_by = ${workerId} then null else lease_until end,
        leased_by = case when leased_by = ${workerId} then null else leased_by end,
        updated_at = now()
    where id = ${a.deliveryId}`;
}

/** Open deliveries past their deadline and not in flight become expired. Returns how many. */
export async function sweepExpired(sql: Sql): Promise<number> {
  const rows = await sql`update deliveries
    set state = 'expired', lease_until = null, leased_by = null, updated_at = now()
    where state in ('pending', 'failed') and next_attempt_at <= now() and deadline_at <= now()
    returning 1`;
  return rows.length;
}

/** When the next delivery this worker could claim becomes due (skipping publishers it cannot take now). */
export async function msUntilNextDue(sql: Sql, skipPublishers: string[]): Promise<number | undefined> {
  // Measured by the database's clock, the one next_attempt_at was written with, so node clock skew cannot matter.
  const [row] = await sql<{ ms: number }[]>`
    select (extract(epoch from d.next_attempt_at - now()) * 1000)::float8 as ms
    from deliveries d join publishers p on p.id = d.publisher_id
    where d.state in ('pending', 'failed') and d.deadline_at > now() and p.disabled_at is null
      and d.publisher_id <> all(${sql.array(skipPublishers)}::text[])
    order by d.next_attempt_at
    limit 1`;
  return row?.ms;
}

/** Gives back rows claimed by a worker that is stopping before it tried them: due again at once. */
export async function releaseLeases(sql: Sql, ids: string[], workerId: string): Promise<void> {
  if (ids.length === 0) return;
  await sql`update deliveries
    set next_attempt_at = least(now(), deadline_at), lease_until = null, leased_by = null, updated_at = now()
    where id = any(${sql.array(ids)}::text[]) and leased_by = ${workerId}`;
}

import { onCitus } from '../db/citus.js';
import type { Sql } from '../db/database.js';
import { createdRangeOfId } from '../ids.js';
import type { ConversionFields } from './message.js';
import { claimDueSharded, leaseOneSharded, msUntilNextDueSharded } from './store-citus.js';

/**
 * The worker's SQL, one function per statement. Every statement commits on its own: no transaction
 * is ever open while an HTTP request is in flight.
 *
 * Due means: open, `next_attempt_at <= now()`, not leased (`lease_until` null or past), before its
 * deadline, publisher enabled. A claim only sets the lease, so a crashed worker's rows are due again
 * the moment their lease runs out. The claim touches no indexed column, so PostgreSQL updates the
 * row in place (HOT, helped by the table's fillfactor) instead of adding an entry to every index.
 * Invariant for open rows: next_attempt_at <= deadline_at, so the sweep expires them on time.
 *
 * Arrays go in as plain parameters with a cast (`${ids}::text[]`), never `sql.array()`: that one is
 * typed when the query is built, and on a fresh pool's first query postgres.js does not know the
 * array types yet, so it would send "a,b" as text.
 *
 * `{status}` is the delivery's own (fixed when it was queued: the first one's, or a status change's),
 * so one webhook-id always carries one message; rows queued before deliveries had a status announce
 * the conversion's current one, as they always did.
 */

export type ClaimedDelivery = {
  id: string;
  publisherId: string;
  state: 'pending' | 'failed' | 'delivered' | 'expired';
  attempts: number;
  /** Past it the delivery expires; a claim made just before it must not send after it. */
  deadlineAt: Date;
  conversion: ConversionFields;
};

export type ClaimParams = {
  workerId: string;
  leaseMs: number;
  want: number;
  perPublisher: number;
  /** Publishers with less room than `perPublisher` (0 = skip entirely). */
  limitIds: string[];
  limitRooms: number[];
};

const CLAIMED_COLUMNS = `d.id, d.publisher_id, d.state, d.attempts, d.deadline_at, c.id as conversion_id, c.click_id, c.txid, c.event,
  coalesce(d.status, c.status) as status,
  c.payout_minor, c.currency, c.offer_id, c.sub1, c.sub2, c.sub3, c.sub4, c.sub5`;

/** What an outbound postback's macros need from its conversion, whichever statement read it. */
export type ConversionMacroColumns = {
  click_id: string;
  txid: string;
  event: string;
  payout_minor: bigint;
  currency: string;
  offer_id: string;
  sub1: string | null;
  sub2: string | null;
  sub3: string | null;
  sub4: string | null;
  sub5: string | null;
};

type ClaimedRow = ConversionMacroColumns & {
  id: string;
  publisher_id: string;
  state: ClaimedDelivery['state'];
  attempts: number;
  deadline_at: Date;
  conversion_id: string;
  status: string;
};

function toClaimed(r: ClaimedRow): ClaimedDelivery {
  return {
    id: r.id,
    publisherId: r.publisher_id,
    state: r.state,
    attempts: r.attempts,
    deadlineAt: r.deadline_at,
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

/**
 * Every publisher with an open delivery, one index descent each (a skip scan of
 * deliveries_publisher_open). Claims and wake-ups walk publishers, not rows: a publisher with a
 * huge backlog that this node cannot take right now (at its cap, circuit open) costs one probe,
 * never a scan through its rows.
 */
const OPEN_PUBLISHERS = `heads(publisher_id) as (
    (select publisher_id from deliveries where state in ('pending', 'failed') order by publisher_id limit 1)
    union all
    select (select d.publisher_id from deliveries d
            where d.state in ('pending', 'failed') and d.publisher_id > h.publisher_id
            order by d.publisher_id limit 1)
    from heads h where h.publisher_id is not null
  )`;

/** Claims up to `want` due deliveries of enabled publishers, at most each publisher's room, oldest due first. */
export async function claimDue(sql: Sql, p: ClaimParams): Promise<ClaimedDelivery[]> {
  if (onCitus()) return claimDueSharded(sql, p);
  const rows = await sql<ClaimedRow[]>`
    with recursive ${sql.unsafe(OPEN_PUBLISHERS)},
    async_commit as (
      -- A claim is not worth a WAL flush: if the server crashed before flushing it, the delivery would
      -- simply be due again and be sent again with the same webhook-id. Claims are the worker's one
      -- serial step, so this is what lets a node claim at memory speed rather than disk speed.
      select set_config('synchronous_commit', 'off', true)
    ),
    rooms as (
      select h.publisher_id, coalesce(l.room, ${p.perPublisher}) as room
      from heads h
      cross join async_commit
      join publishers p on p.id = h.publisher_id and p.disabled_at is null
      left join unnest(${p.limitIds}::text[], ${p.limitRooms}::int[]) as l(publisher_id, room) on l.publisher_id = h.publisher_id
      where coalesce(l.room, ${p.perPublisher}) > 0
    ), candidates as (
      select c.id, c.next_attempt_at
      from rooms r
      cross join lateral (
        select d.id, d.next_attempt_at from deliveries d
        where d.publisher_id = r.publisher_id and d.state in ('pending', 'failed')
          and d.next_attempt_at <= now() and d.deadline_at > now()
          and (d.lease_until is null or d.lease_until <= now())
        order by d.next_attempt_at
        limit r.room
        for update skip locked
      ) c
    ), chosen as (
      select id from candidates order by next_attempt_at limit ${p.want}
    )
    update deliveries d
    set lease_until = now() + ${p.leaseMs}::float8 * interval '1 millisecond',
        leased_by = ${p.workerId},
        updated_at = now()
    from conversions c
    -- = any(array(...)) keeps the update on the primary key; a join to the CTE can plan as a scan of the table.
    -- The conversion's time names its partition (conversions are day-partitioned).
    where d.id = any(array(select id from chosen)) and c.id = d.conversion_id and c.created_at = d.conversion_created_at
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
  if (onCitus()) return leaseOneSharded(sql, id, workerId, leaseMs);
  const [from, to] = createdRangeOfId(id);
  const [current] = await sql<{ in_flight: boolean; disabled: boolean }[]>`
    select coalesce(d.lease_until > now(), false) as in_flight, p.disabled_at is not null as disabled
    from deliveries d join publishers p on p.id = d.publisher_id
    where d.id = ${id} and d.created_at >= ${from}::timestamptz and d.created_at < ${to}::timestamptz`;
  if (!current) return { kind: 'not_found' };
  if (current.disabled) return { kind: 'publisher_disabled' };
  if (current.in_flight) return { kind: 'in_flight' };
  const rows = await sql<ClaimedRow[]>`
    update deliveries d
    set lease_until = now() + ${leaseMs}::float8 * interval '1 millisecond',
        leased_by = ${workerId},
        updated_at = now()
    from conversions c
    where d.id = ${id} and d.created_at >= ${from}::timestamptz and d.created_at < ${to}::timestamptz
      and c.id = d.conversion_id and c.created_at = d.conversion_created_at and (d.lease_until is null or d.lease_until <= now())
    returning ${sql.unsafe(CLAIMED_COLUMNS)}`;
  const row = rows[0];
  return row ? { kind: 'leased', delivery: toClaimed(row) } : { kind: 'in_flight' };
}

/** Open deliveries past their deadline and not in flight become expired. Returns how many. */
export async function sweepExpired(sql: Sql): Promise<number> {
  const rows = await sql`update deliveries
    set state = 'expired', lease_until = null, leased_by = null, updated_at = now()
    where state in ('pending', 'failed') and deadline_at <= now() and next_attempt_at <= now()
      and (lease_until is null or lease_until <= now())
    returning 1`;
  return rows.length;
}

/** When the next delivery this worker could claim becomes due (skipping publishers it cannot take now). */
export async function msUntilNextDue(sql: Sql, skipPublishers: string[]): Promise<number | undefined> {
  if (onCitus()) return msUntilNextDueSharded(sql, skipPublishers);
  // Measured by the database's clock, the one next_attempt_at was written with, so node clock skew cannot matter.
  const [row] = await sql<{ ms: number | null }[]>`
    with recursive ${sql.unsafe(OPEN_PUBLISHERS)}
    select (extract(epoch from min(n.next_attempt_at) - now()) * 1000)::float8 as ms
    from heads h
    join publishers p on p.id = h.publisher_id and p.disabled_at is null
    cross join lateral (
      select d.next_attempt_at from deliveries d
      where d.publisher_id = h.publisher_id and d.state in ('pending', 'failed') and d.deadline_at > now()
        -- In flight here or elsewhere: its outcome, or the poll after its lease runs out, brings it back.
        and (d.lease_until is null or d.lease_until <= now())
      order by d.next_attempt_at
      limit 1
    ) n
    where h.publisher_id <> all(${skipPublishers}::text[])`;
  return row?.ms ?? undefined;
}

/** Gives back rows claimed by a worker that is stopping before it tried them: due again at once. */
export async function releaseLeases(sql: Sql, ids: string[], workerId: string): Promise<void> {
  if (ids.length === 0) return;
  await sql`update deliveries
    set lease_until = null, leased_by = null, updated_at = now()
    where id = any(${ids}::text[]) and leased_by = ${workerId}`;
}

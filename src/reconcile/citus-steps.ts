import type { Sql } from '../db/database.js';
import { expireDeliveriesSharded, refireDeliveriesSharded, type ChangedDelivery } from '../delivery/rescheduling.js';
import { wakeWorkers } from '../delivery/wake.js';
import { newTimedId } from '../ids.js';
import { ADD_RECOVERED, RECOVERED_COLUMNS, recoveredValues, recoveryCandidates } from './recovery.js';
import { ROOT_CAUSE_QUERY_COLUMNS, rootCauseQuery } from './root-causes.js';
import { ADD_COMPARISON, COMPARISON_COUNTS, comparisonUnits, type RunWindow } from './window.js';

/**
 * The run's steps on Citus. The single-PostgreSQL steps are one statement each, joining the traffic
 * tables to each other and writing the run's own tables in the same statement. On Citus the traffic
 * tables are sharded (by advertiser; deliveries by publisher) and the run's tables stay on the
 * coordinator, and Citus runs a query over several sharded tables only when every one of them is
 * filtered to the same shard by its distribution column. So each step reads the traffic one
 * advertiser at a time, with the same SQL as the single-PostgreSQL step plus that filter, and writes
 * what it found to the run's tables in a second statement of the same transaction: the counts and
 * what they count still commit together. Re-fire and expiry change deliveries by the conversion time
 * each delivery carries, in one multi-shard statement.
 */

/** At most this many rows per statement that binds parameters per row (PostgreSQL takes at most 65,535). */
const ROWS_PER_INSERT = 1000;

const RUN_ROW_COLUMNS = 'run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired';

/**
 * Rows for one of the run's own (coordinator) tables, typed by the table's row type: one parameter
 * however many rows. Passed as text and cast, so the driver does not encode the JSON a second time;
 * bigints (BigInt in JavaScript) go as their decimal text.
 */
function rowsOf(db: Sql, table: 'reconciliation_root_causes' | 'reconciliation_rows', rows: Record<string, unknown>[]) {
  const json = JSON.stringify(rows, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return db`jsonb_populate_recordset(null::${db.unsafe(table)}, ${json}::text::jsonb)`;
}

async function inTransaction<T>(db: Sql, work: () => Promise<T>): Promise<T> {
  // The run's connection is reserved for it, so BEGIN and COMMIT bracket exactly these statements.
  await db.unsafe('begin');
  try {
    const result = await work();
    await db.unsafe('commit');
    return result;
  } catch (err) {
    await db.unsafe('rollback').catch(() => undefined);
    throw err;
  }
}

function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) out.push(rows.slice(i, i + ROWS_PER_INSERT));
  return out;
}

/**
 * The advertisers with pixels (and, with `s2s`, S2S conversions) in `w`: the traffic's shards are read
 * one advertiser at a time, and only those that have something in the slice (one multi-shard
 * aggregate per table, each on its own shard's index over the time column).
 */
async function advertisersIn(db: Sql, w: RunWindow, s2s: boolean): Promise<string[]> {
  const from = w.from.toISOString();
  const to = w.to.toISOString();
  const pixels = await db<{ advertiser_id: string }[]>`
    select distinct advertiser_id from pixel_events where created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz`;
  const conversions = s2s
    ? await db<{ advertiser_id: string }[]>`
        select distinct advertiser_id from conversions where source = 's2s' and created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz`
    : [];
  return [...new Set([...pixels, ...conversions].map((r) => r.advertiser_id))].sort();
}

export async function recordRootCausesSharded(db: Sql, runId: string, w: RunWindow, graceS: number): Promise<number> {
  let total = 0;
  for (const advertiser of await advertisersIn(db, w, false)) {
    const { ctes, select } = rootCauseQuery(db, w, graceS, advertiser);
    const rows = await db<Record<string, unknown>[]>`with ${ctes} ${select}`;
    if (rows.length === 0) continue;
    const columns = db.unsafe(ROOT_CAUSE_QUERY_COLUMNS.join(', '));
    await db`insert into reconciliation_root_causes (run_id, ${columns})
      select ${runId}, ${columns} from ${rowsOf(db, 'reconciliation_root_causes', rows)}`;
    total += rows.length;
  }
  return total;
}

type Candidate = {
  advertiser_id: string;
  txid: string;
  click_id: string;
  click_created_at: Date;
  offer_id: string;
  publisher_id: string;
  event: string;
  pixel_at: Date;
  user_ip: string | null;
  user_agent: string | null;
  cause: string;
  error_code: string | null;
  reason: string | null;
  attempts: number;
  /** bigint: parsed as a BigInt, which JSON cannot carry. */
  rate_limited: bigint;
};

type Subs = { sub1: string | null; sub2: string | null; sub3: string | null; sub4: string | null; sub5: string | null };

/** The recovery of recovery.ts, with the statements split as the module comment says; the txid key still decides who owns a txid. */
export async function recoverPixelOnlySharded(db: Sql, runId: string, w: RunWindow, graceS: number): Promise<number> {
  const candidates = await db<Candidate[]>`${recoveryCandidates(db, runId, w, graceS, false)}`;
  const byAdvertiser = new Map<string, Candidate[]>();
  for (const c of candidates) byAdvertiser.set(c.advertiser_id, [...(byAdvertiser.get(c.advertiser_id) ?? []), c]);
  let total = 0;
  for (const [advertiser, group] of byAdvertiser) {
    const clicks = await db<(Subs & { id: string })[]>`
      select id, sub1, sub2, sub3, sub4, sub5 from clicks
      where advertiser_id = ${advertiser} and id = any(${group.map((c) => c.click_id)}::text[])
        and created_at = any(${group.map((c) => c.click_created_at.toISOString())}::timestamptz[])`;
    const subs = new Map(clicks.map((k) => [k.id, k]));
    total += await inTransaction(db, async () => {
      const claimed = new Map<string, string>();
      // The unique key's order, as the intake locks it, so the two never wait on each other in a cycle.
      const keys = group
        .map((c) => ({ advertiser_id: c.advertiser_id, txid: c.txid, conversion_id: newTimedId('cv', c.pixel_at), created_at: c.pixel_at }))
        .sort((a, b) => (a.txid < b.txid ? -1 : a.txid > b.txid ? 1 : 0));
      for (const part of chunks(keys)) {
        // A multi-row VALUES insert: Citus routes each row to its shard, conflict clause and all.
        const values = part.map((k) => db`(${k.advertiser_id}, ${k.txid}, ${k.conversion_id}, ${k.created_at.toISOString()}::timestamptz)`);
        const rows = await db<{ txid: string; conversion_id: string }[]>`
          insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
          values ${values.reduce((list, v, i) => (i === 0 ? v : db`${list}, ${v}`))}
          on conflict (advertiser_id, txid) do nothing
          returning txid, conversion_id`;
        for (const r of rows) claimed.set(r.txid, r.conversion_id);
      }
      const won = group.flatMap((c) => {
        const id = claimed.get(c.txid);
        const k = subs.get(c.click_id);
        return id ? [{ ...c, rate_limited: String(c.rate_limited), conversion_id: id, sub1: k?.sub1 ?? null, sub2: k?.sub2 ?? null, sub3: k?.sub3 ?? null, sub4: k?.sub4 ?? null, sub5: k?.sub5 ?? null }] : [];
      });
      if (won.length === 0) return 0;
      // Passed as text and cast, so the driver does not encode it as JSON a second time.
      const json = JSON.stringify(won);
      const recordset = db`jsonb_to_recordset(${json}::text::jsonb) as c(conversion_id text, advertiser_id text, txid text, click_id text,
        click_created_at timestamptz, offer_id text, publisher_id text, event text, pixel_at timestamptz, user_ip inet, user_agent text,
        cause text, error_code text, reason text, attempts int, rate_limited bigint, sub1 text, sub2 text, sub3 text, sub4 text, sub5 text)`;
      await db`
        insert into conversions (${db.unsafe(RECOVERED_COLUMNS)})
        select ${recoveredValues(db, runId, graceS, db`c.conversion_id`)}
        from ${recordset} join offers o on o.id = c.offer_id`;
      await db`
        insert into conversion_status_history (conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
        select c.conversion_id, c.advertiser_id, null, 'approved', o.payout_minor, o.currency, 'pixel', greatest(now(), c.pixel_at)
        from ${recordset} join offers o on o.id = c.offer_id`;
      await db`
        insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
        select ${runId}, c.offer_id, c.publisher_id, date_trunc('hour', c.pixel_at, 'UTC'), 0, 0, 0, 0, 0, count(*), 0, 0
        from ${recordset}
        group by c.offer_id, c.publisher_id, date_trunc('hour', c.pixel_at, 'UTC')
        ${db.unsafe(ADD_RECOVERED)}`;
      await db`
        update reconciliation_root_causes r set recovered_conversion_id = c.conversion_id
        from ${recordset}
        where r.run_id = ${runId} and r.existing_conversion_id is null
          and r.advertiser_id = c.advertiser_id and r.txid = c.txid and r.click_id = c.click_id`;
      return won.length;
    });
  }
  return total;
}

/**
 * Adds `changed` deliveries to the run's rows, counted by their conversion's offer, publisher and
 * hour, in column `column`: the conversions read by ID on their shards, counted on the coordinator.
 */
async function countDeliveries(db: Sql, runId: string, changed: ChangedDelivery[], column: 'refired' | 'expired'): Promise<void> {
  if (changed.length === 0) return;
  const counted = db.unsafe(column);
  await db`
    insert into reconciliation_rows (${db.unsafe(RUN_ROW_COLUMNS)})
    select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, 0,
           ${column === 'refired' ? db`count(*), 0` : db`0, count(*)`}
    from conversions
    where id = any(${changed.map((d) => d.conversion_id)}::text[])
      and created_at = any(${changed.map((d) => d.conversion_created_at.toISOString())}::timestamptz[])
    group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
    on conflict (run_id, offer_id, publisher_id, hour) do update set ${counted} = reconciliation_rows.${counted} + excluded.${counted}`;
}

export async function refireDeliveriesShardedRun(db: Sql, runId: string, w: RunWindow, run: RunWindow): Promise<number> {
  const refired = await inTransaction(db, async () => {
    const changed = await refireDeliveriesSharded(db, w, run);
    await countDeliveries(db, runId, changed, 'refired');
    return changed.length;
  });
  if (refired > 0) await wakeWorkers(db);
  return refired;
}

export async function expireDeliveriesShardedRun(db: Sql, runId: string, w: RunWindow): Promise<number> {
  return inTransaction(db, async () => {
    const changed = await expireDeliveriesSharded(db, runId, w);
    await countDeliveries(db, runId, changed, 'expired');
    return changed.length;
  });
}

export async function compareWindowSharded(db: Sql, runId: string, w: RunWindow): Promise<number> {
  let total = 0;
  for (const advertiser of await advertisersIn(db, w, true)) {
    const counts = await db<Record<string, unknown>[]>`with ${comparisonUnits(db, w, advertiser)} select ${db.unsafe(COMPARISON_COUNTS)}`;
    if (counts.length === 0) continue;
    const rows = counts.map((c) => ({ run_id: runId, ...c, recovered: 0, refired: 0, expired: 0 }));
    await db`insert into reconciliation_rows (${db.unsafe(RUN_ROW_COLUMNS)}) select ${db.unsafe(RUN_ROW_COLUMNS)} from ${rowsOf(db, 'reconciliation_rows', rows)}
      ${db.unsafe(ADD_COMPARISON)}`;
    total += counts.length;
  }
  return total;
}

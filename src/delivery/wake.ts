import type postgres from 'postgres';
import type { Sql, TxSql } from '../db/database.js';

/**
 * The one wake-up signal of the delivery workers: every change that makes a delivery due sooner
 * (queued, re-enabled, re-fired) sends it through this module, and nothing else in the engine does.
 * PostgreSQL delivers a NOTIFY on commit only, so a worker never wakes for a row it cannot see yet,
 * and several in one transaction arrive as one.
 *
 * Sent by the engine rather than by a trigger on `deliveries`: under Citus (docker-compose's `citus`
 * profile) the table is distributed and a trigger would fire on the worker node holding the shard,
 * whose NOTIFY never reaches the engines LISTENing on the coordinator.
 */

/** The LISTEN/NOTIFY channel workers wait on. */
export const DELIVERIES_CHANNEL = 'deliveries';

/** Wakes every node's worker once the current transaction commits (at once outside one). */
export async function wakeWorkers(db: Sql | TxSql): Promise<void> {
  await db`select pg_notify(${DELIVERIES_CHANNEL}, '')`;
}


/**
 * The same inside a statement, as a CTE named `woken` that sends one signal per publisher of the
 * CTE `rows` (named by the caller; it has a `publisher_id` column), the publisher's ID as payload: a
 * worker that cannot take that publisher now (circuit open, at its cap) need not claim at all
 * (`wakesFor`). PostgreSQL never runs a SELECT CTE that nothing reads, so the statement must read
 * `woken` (`cross join woken` works: it always has one row).
 */
export function wokenCte(db: Sql | TxSql, rows: string): postgres.Fragment {
  return db`woken as (
      select count(pg_notify(${DELIVERIES_CHANNEL}, publisher_id)) as n from (select distinct publisher_id from ${db.unsafe(rows)}) as publishers
    )`;
}

/** The publisher a wake-up names, or undefined when it names none (wakeWorkers: any may be due). */
export function wakesFor(payload: string): string | undefined {
  return payload === '' ? undefined : payload;
}

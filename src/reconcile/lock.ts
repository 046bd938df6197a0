import type { Sql } from '../db/database.js';

/**
 * One reconciliation at a time across every node: a PostgreSQL session-level advisory lock, held on
 * a connection reserved for the whole run. It needs no clock and no lease renewal, and it cannot
 * outlive its holder: when a node dies, PostgreSQL closes its session and the lock is free again.
 * The run's statements go through the same connection, which also carries the run's session
 * settings (below) without touching the pool's other connections.
 */

/** Arbitrary and fixed: every engine process must use the same key (migrations use 7_245_001). */
export const RECONCILE_LOCK_KEY = 7_245_030;

/**
 * A run's statements are large scans and joins. Without parallel workers a run occupies one core,
 * leaving the others to the intake; a larger work_mem keeps its hashes and sorts in memory.
 */
const RUN_SETTINGS: [string, string][] = [
  ['max_parallel_workers_per_gather', '0'],
  ['work_mem', '64MB'],
];

export type RunSession = { db: Sql; release(): Promise<void> };

/**
 * The lock, or undefined when another node holds it: at once when `waitMs` is 0 (the scheduler's
 * try), else after waiting up to `waitMs` for the other run to finish.
 */
export async function acquireRunLock(sql: Sql, waitMs: number): Promise<RunSession | undefined> {
  const conn = await sql.reserve();
  let locked = false;
  try {
    if (waitMs <= 0) {
      const [row] = await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(${RECONCILE_LOCK_KEY}) as ok`;
      locked = row?.ok === true;
    } else {
      await conn`select set_config('lock_timeout', ${`${Math.ceil(waitMs)}ms`}, false)`;
      try {
        await conn`select pg_advisory_lock(${RECONCILE_LOCK_KEY})`;
        locked = true;
      } catch (err) {
        if ((err as { code?: string }).code !== '55P03') throw err; // lock_not_available: waited long enough
      } finally {
        await conn`select set_config('lock_timeout', '0', false)`;
      }
    }
    if (!locked) {
      conn.release();
      return undefined;
    }
    for (const [name, value] of RUN_SETTINGS) await conn`select set_config(${name}, ${value}, false)`;
  } catch (err) {
    if (locked) await conn`select pg_advisory_unlock(${RECONCILE_LOCK_KEY})`.catch(() => undefined);
    conn.release();
    throw err;
  }
  return {
    db: conn,
    async release() {
      try {
        for (const [name] of RUN_SETTINGS) await conn.unsafe(`reset ${name}`);
        await conn`select pg_advisory_unlock(${RECONCILE_LOCK_KEY})`;
      } finally {
        conn.release();
      }
    },
  };
}

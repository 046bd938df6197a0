import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import type { Sql } from './database.js';

/**
 * The Citus step: on a database where the `citus` extension is installed (the coordinator of a Citus
 * cluster), `sql/citus/*.sql` make the catalog reference tables and distribute the large tables by
 * the key their hot queries carry (see sql/citus/000001_distribute.sql for what goes where). The
 * ordinary migrations run first, on the coordinator, exactly as on a plain PostgreSQL; each step
 * file then runs once, in its own transaction, recorded in `citus_steps`. Plain PostgreSQL never
 * sees any of it.
 */

const CITUS_SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sql/citus');

type Conn = postgres.ReservedSql<{ bigint: bigint }> | Sql;

export async function hasCitus(sql: Conn): Promise<boolean> {
  const [row] = await sql<{ installed: boolean }[]>`select exists (select 1 from pg_extension where extname = 'citus') as installed`;
  return row?.installed ?? false;
}

/** Applies the Citus step files not applied yet; the caller holds the migration lock. Returns their names. */
export async function applyCitusSteps(conn: postgres.ReservedSql<{ bigint: bigint }>, log: (line: string) => void): Promise<string[]> {
  if (!(await hasCitus(conn))) return [];
  await conn`create table if not exists citus_steps (name text primary key, applied_at timestamptz not null default now())`;
  const files = (await readdir(CITUS_SQL_DIR)).filter((f) => /^\d{6}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const applied = new Set((await conn<{ name: string }[]>`select name from citus_steps`).map((r) => r.name));
  const done: string[] = [];
  for (const file of files) {
    if (applied.has(file)) continue;
    log(`applying Citus step ${file}`);
    const text = await readFile(path.join(CITUS_SQL_DIR, file), 'utf8');
    await conn.unsafe(`begin`);
    try {
      await conn`insert into citus_steps (name) values (${file})`;
      await conn.unsafe(text);
      await conn.unsafe(`commit`);
    } catch (err) {
      await conn.unsafe(`rollback`);
      throw new Error(`Citus step ${file} failed: ${(err as Error).message}`);
    }
    done.push(file);
  }
  // A step may set database defaults (sql/citus/000001: repartition joins); this connection was
  // opened before them and goes back to the caller's pool.
  if (done.length > 0) await conn`select set_config('citus.enable_repartition_joins', 'on', false)`;
  return done;
}

/**
 * Whether this process's statements take their Citus forms (db/citus.ts callers in delivery/ and
 * postback/). Set once by createEngine from the database it connects to: a process serves one
 * database, and hot paths must not ask the server per statement.
 */
let citusForms = false;
export function useCitusForms(on: boolean): void {
  citusForms = on;
}
export const onCitus = (): boolean => citusForms;

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyCitusSteps } from './citus.js';
import type { Sql } from './database.js';

/**
 * Forward-only numbered migrations from `sql/`. One session-level advisory lock serialises every
 * engine process that starts at the same moment: the first applies, the others wait and then find
 * nothing left to do. Each file runs in its own transaction together with its bookkeeping row.
 */

export const SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sql');
const MIGRATION_LOCK_KEY = 7_245_001; // arbitrary, fixed: every engine process must use the same key

export type Migration = { id: number; name: string; text: string };

export async function loadMigrations(dir = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{6}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      id: Number(file.slice(0, 6)),
      name: file,
      text: await readFile(path.join(dir, file), 'utf8'),
    })),
  );
}

export async function migrate(sql: Sql, log: (line: string) => void = () => undefined): Promise<number[]> {
  const migrations = await loadMigrations();
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await conn`create table if not exists schema_migrations (
        id integer primary key, name text not null, applied_at timestamptz not null default now())`;
      const applied = new Set((await conn<{ id: number }[]>`select id from schema_migrations`).map((r) => r.id));
      const done: number[] = [];
      for (const m of migrations) {
        if (applied.has(m.id)) continue;
        log(`applying migration ${m.name}`);
        await conn.unsafe(`begin`);
        try {
          await conn`insert into schema_migrations (id, name) values (${m.id}, ${m.name})`;
          await conn.unsafe(m.text);
          await conn.unsafe(`commit`);
        } catch (err) {
          await conn.unsafe(`rollback`);
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
        done.push(m.id);
      }
      // On a Citus coordinator the schema is then distributed (db/citus.ts); elsewhere this does nothing.
      await applyCitusSteps(conn, log);
      return done;
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    conn.release();
  }
}

/** Ready means reachable and every migration this build knows is applied. */
let expectedIds: Promise<number[]> | undefined;
export async function isMigrated(sql: Sql): Promise<boolean> {
  expectedIds ??= loadMigrations().then((ms) => ms.map((m) => m.id));
  const expected = await expectedIds;
  const rows = await sql<{ id: number }[]>`select id from schema_migrations`;
  const have = new Set(rows.map((r) => r.id));
  return expected.every((id) => have.has(id));
}

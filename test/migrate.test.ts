import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, isMigrated } from '../src/db/migrate.js';
import { emptyDatabase } from './helpers/db.js';

let drop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await drop?.();
  drop = undefined;
});

function runMigrateProcess(url: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/migrate-once.ts'], {
      env: { ...process.env, DATABASE_URL: url },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

describe('migrations', () => {
  it('apply from empty, then a second run applies nothing', async () => {
    const db = await emptyDatabase();
    drop = db.drop;
    const all = (await loadMigrations()).map((m) => m.id);
    expect(await migrate(db.sql)).toEqual(all);
    expect(await migrate(db.sql)).toEqual([]);
    expect(await isMigrated(db.sql)).toBe(true);
    const tables = await db.sql`select table_name from information_schema.tables where table_schema = 'public'`;
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['conversions', 'clicks', 'deliveries', 'reviews']));
  });

  it('two processes migrating the same empty database at once: one applies, the other waits and applies nothing', async () => {
    const db = await emptyDatabase();
    drop = db.drop;
    const all = (await loadMigrations()).map((m) => m.id);
    const results = await Promise.all([runMigrateProcess(db.url), runMigrateProcess(db.url)]);
    expect(results.flat().sort()).toEqual(all);
    expect(results.some((r) => r.length === 0)).toBe(true);
    const rows = await db.sql`select id from schema_migrations order by id`;
    expect(rows.map((r) => r.id)).toEqual(all);
  });

  it('an unmigrated database is not ready', async () => {
    const db = await emptyDatabase();
    drop = db.drop;
    await expect(isMigrated(db.sql)).rejects.toThrow();
  });
});

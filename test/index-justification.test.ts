import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_JUSTIFICATIONS } from '../src/db/index-justifications.js';
import { countIndexEntries, neverScanned, readIndexUsage } from '../reports/bench/index-usage.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';

/**
 * Every index of the migrated schema is justified by a query in the code (issue 15): an index added
 * by a migration without an entry in src/db/index-justifications.ts fails here, and so does an entry
 * whose index is gone or whose named place no longer holds the name it points to.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const ROOT = path.resolve(import.meta.dirname, '..');

async function schemaIndexes(): Promise<{ table: string; index: string }[]> {
  // Top-level indexes only: a partition's copy of its parent's index is the parent's.
  return db.sql<{ table: string; index: string }[]>`
    select tc.relname as table, ic.relname as index
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_class tc on tc.oid = i.indrelid
    where ic.relnamespace = current_schema()::regnamespace
      and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
    order by 1, 2`;
}

describe('index justifications', () => {
  it('every index of the migrated schema has an entry, on the right table, and every entry an index', async () => {
    const indexes = await schemaIndexes();
    expect(indexes.length).toBeGreaterThan(0);
    const unjustified = indexes.filter((i) => !(i.index in INDEX_JUSTIFICATIONS)).map((i) => `${i.table}.${i.index}`);
    expect(unjustified, 'add these to src/db/index-justifications.ts with the query that needs them, or drop them').toEqual([]);
    const wrongTable = indexes.filter((i) => INDEX_JUSTIFICATIONS[i.index] && INDEX_JUSTIFICATIONS[i.index]?.table !== i.table).map((i) => i.index);
    expect(wrongTable).toEqual([]);
    const present = new Set(indexes.map((i) => i.index));
    const stale = Object.keys(INDEX_JUSTIFICATIONS).filter((name) => !present.has(name));
    expect(stale, 'entries for indexes the schema no longer has').toEqual([]);
  });

  it('every entry names places that exist and still hold the name it points to', () => {
    const broken: string[] = [];
    for (const [index, j] of Object.entries(INDEX_JUSTIFICATIONS)) {
      expect(j.why.length, index).toBeGreaterThan(10);
      expect(j.usedBy.length, index).toBeGreaterThan(0);
      for (const place of j.usedBy) {
        const file = path.join(ROOT, place.file);
        if (!existsSync(file)) {
          broken.push(`${index}: ${place.file} does not exist`);
          continue;
        }
        if (!new RegExp(`\\b${place.name}\\b`).test(readFileSync(file, 'utf8'))) broken.push(`${index}: ${place.file} has no ${place.name}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the bench report lists every index with its scans, flags those never scanned, and counts entries exactly', async () => {
    const before = await countIndexEntries(db.sql, ['publishers']);
    await db.sql`insert into publishers (id, name, postback_url, method, secret)
      select 'pub_ix' || g, 'p', 'https://example.com/', 'GET', '\\x00' from generate_series(1, 3) g`;
    const after = await countIndexEntries(db.sql, ['publishers']);
    // Two indexes (id, seq), three rows: three entries each.
    expect(after.get('publishers_pkey')! - (before.get('publishers_pkey') ?? 0)).toBe(3);
    expect(after.get('publishers_seq_key')! - (before.get('publishers_seq_key') ?? 0)).toBe(3);

    // A lookup by primary key is an index scan of publishers_pkey (enable_seqscan off: the table is tiny).
    await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      await tx`select id from publishers where id = 'pub_ix1'`;
    });
    // The counters are flushed at the end of a transaction, once a second at most while a backend is busy.
    let usage = await readIndexUsage(db.sql);
    for (let i = 0; i < 40 && !usage.find((t) => t.table === 'publishers')?.indexes.find((x) => x.index === 'publishers_pkey')?.scans; i++) {
      await new Promise((r) => setTimeout(r, 100));
      usage = await readIndexUsage(db.sql);
    }
    const indexes = await schemaIndexes();
    expect(usage.flatMap((t) => t.indexes.map((i) => i.index)).sort()).toEqual(indexes.map((i) => i.index).sort());
    const publishers = usage.find((t) => t.table === 'publishers');
    const pkey = publishers?.indexes.find((i) => i.index === 'publishers_pkey');
    expect(pkey?.scans).toBeGreaterThan(0);
    expect(pkey?.neverScanned).toBe(false);
    expect(pkey?.sizeBytes).toBeGreaterThan(0);
    expect(pkey?.justification).toBe(INDEX_JUSTIFICATIONS.publishers_pkey?.why);
    // Nothing reads the review trail by id in this fresh database.
    expect(neverScanned(usage)).toContain('reviews.reviews_pkey');
    expect(neverScanned(usage)).not.toContain('publishers.publishers_pkey');
  });
});

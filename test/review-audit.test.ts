import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { postConversion, review, reviewRows } from './helpers/review.js';

/**
 * The review audit trail is append-only, and the database itself enforces it: direct SQL from the
 * engine's own database role (in these tests the superuser that also ran the migrations) cannot
 * change or remove a row, neither by DML nor by switching the triggers off first.
 */

let t: TestEngine;
let conversionId: string;
let trail: Record<string, unknown>[];

beforeAll(async () => {
  t = await startTestEngine();
  const s = await seedCatalog(t.app, { offer: { fraud: {} } });
  const analyst = await createToken(t.app, 'analyst');
  conversionId = (await postConversion(t.app, s)).conversionId;
  expect((await review(t.app, conversionId, { decision: 'reject', note: 'bot' }, analyst.token)).statusCode).toBe(201);
  expect((await review(t.app, conversionId, { decision: 'approve', note: 'checked' }, analyst.token)).statusCode).toBe(201);
  trail = [...(await reviewRows(t.sql, conversionId))];
  expect(trail).toHaveLength(2);
});
afterAll(async () => {
  await t.close();
});

/** Runs `statement` through the engine's own pool and returns the error PostgreSQL raised. */
async function refused(statement: string): Promise<{ code: string; message: string }> {
  const err = await t.engine.sql.unsafe(statement).then(
    () => undefined,
    (e: { code: string; message: string }) => e,
  );
  expect(err, `${statement} should have been refused`).toBeDefined();
  return err as { code: string; message: string };
}

describe('the reviews table', () => {
  it('is the engine role itself (a superuser here) that is refused', async () => {
    const [role] = await t.engine.sql`select current_user as name, usesuper from pg_user where usename = current_user`;
    expect(role?.usesuper).toBe(true);
  });

  it('refuses UPDATE, DELETE and TRUNCATE', async () => {
    for (const statement of [
      `update reviews set decision = 'approve', note = 'rewritten' where conversion_id = '${conversionId}'`,
      `update reviews set reviewer_name = 'someone else'`,
      `delete from reviews where conversion_id = '${conversionId}'`,
      `delete from reviews`,
      `truncate reviews`,
      `truncate reviews, conversions cascade`,
    ]) {
      const err = await refused(statement);
      expect(err.code, statement).toBe('42501');
      expect(err.message, statement).toMatch(/append-only/);
    }
    expect(await reviewRows(t.sql, conversionId)).toEqual(trail);
  });

  it('still refuses them with triggers skipped for replication (session_replication_role = replica)', async () => {
    const err = await t.engine.txSql
      .begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        await tx`delete from reviews where conversion_id = ${conversionId}`;
      })
      .then(
        () => undefined,
        (e: { code: string; message: string }) => e,
      );
    expect(err?.code).toBe('42501');
    expect(await reviewRows(t.sql, conversionId)).toEqual(trail);
  });

  it('refuses disabling, replacing or dropping the triggers, their function or the table', async () => {
    for (const statement of [
      'alter table reviews disable trigger reviews_append_only',
      'alter table reviews disable trigger all',
      'alter table reviews rename to reviews_old',
      'drop trigger reviews_append_only on reviews',
      'drop trigger reviews_no_truncate on reviews',
      'drop table reviews',
      'drop function refuse_audit_change() cascade',
      'create or replace function refuse_audit_change() returns trigger language plpgsql as $$ begin return old; end $$',
      'create or replace trigger reviews_append_only before update or delete on reviews for each row execute function suppress_redundant_updates_trigger()',
    ]) {
      const err = await refused(statement);
      expect(err.code, statement).toBe('42501');
    }
    // Nothing above took effect: the table, its triggers (fired always) and the refusal all stand.
    const triggers = await t.sql`select tgname, tgenabled from pg_trigger where tgrelid = 'reviews'::regclass and not tgisinternal order by tgname`;
    expect(triggers).toEqual([
      { tgname: 'reviews_append_only', tgenabled: 'A' },
      { tgname: 'reviews_no_truncate', tgenabled: 'A' },
    ]);
    expect((await refused(`delete from reviews where conversion_id = '${conversionId}'`)).code).toBe('42501');
    expect(await reviewRows(t.sql, conversionId)).toEqual(trail);
  });

  it('still takes new entries, and DDL elsewhere is untouched by the guard', async () => {
    await t.engine.sql`create table audit_guard_probe (id int)`;
    await t.engine.sql`alter table audit_guard_probe add column note text`;
    await t.engine.sql`drop table audit_guard_probe`;
    const [row] = await t.engine.sql`
      insert into reviews (conversion_id, decision, note, reviewer_token_id, reviewer_name)
      values (${conversionId}, 'reject', 'direct insert', 'tok_x', 'sql') returning id`;
    expect(row?.id).toBeGreaterThan(trail[1]?.id as bigint);
    expect(await reviewRows(t.sql, conversionId)).toHaveLength(3);
  });
});

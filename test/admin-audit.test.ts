import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, decodeWebhookSecret, expectApiError, get, patch, post } from './helpers/admin.js';
import { ADMIN, auth, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The audit of admin changes (CONTRACT §10) against real PostgreSQL: one row per admin write with the
 * entity as the API shows it before and after, written in the write's own transaction, never a secret,
 * and refused UPDATE/DELETE by the database itself.
 */

let t: TestEngine;
/** Every secret the API handed out in this file, to search the audit for. */
const secrets: string[] = [];

beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t?.close();
});

const ENV_ACTOR = { tokenId: 'env', name: 'ADMIN_TOKEN' };

type AuditRow = { id: bigint; at: Date; actor_token_id: string; actor_name: string; action: string; entity: string; entity_id: string; before: unknown; after: unknown };
const auditRows = () => t.sql<AuditRow[]>`select * from admin_audit order by id`;

/** Runs one admin call and returns the rows it added to the audit. */
async function audited<T>(call: () => Promise<T>): Promise<{ result: T; rows: AuditRow[] }> {
  const [last] = await t.sql<{ id: bigint }[]>`select coalesce(max(id), 0) as id from admin_audit`;
  const result = await call();
  const rows = await t.sql<AuditRow[]>`select * from admin_audit where id > ${last?.id ?? 0n} order by id`;
  return { result, rows };
}

function expectOneRow(rows: AuditRow[], expected: { action: string; entity: string; entityId: string; before: unknown; after: unknown; actor?: object }) {
  expect(rows).toHaveLength(1);
  const [row] = rows as [AuditRow];
  expect({ tokenId: row.actor_token_id, name: row.actor_name }).toEqual(expected.actor ?? ENV_ACTOR);
  expect({ action: row.action, entity: row.entity, entityId: row.entity_id, before: row.before, after: row.after }).toEqual({
    action: expected.action,
    entity: expected.entity,
    entityId: expected.entityId,
    before: expected.before,
    after: expected.after,
  });
}

/** A `whsec_` secret in every form it could leak in: as shown, its base64 and the key's hex and base64url. */
function remember(whsec: string) {
  const key = decodeWebhookSecret(whsec);
  secrets.push(whsec, whsec.slice('whsec_'.length), key.toString('hex'), key.toString('base64url'));
}

function rememberToken(token: string) {
  const hash = createHash('sha256').update(token, 'utf8').digest();
  secrets.push(token, hash.toString('hex'), hash.toString('base64'), `\\x${hash.toString('hex')}`);
}

let advertiser: { id: string; secrets: { id: string; secret: string }[] };
let publisherId: string;
let offerId: string;

describe('every admin write leaves exactly one audit row', () => {
  it('advertiser create, update, secret create and revoke', async () => {
    const created = await audited(() => post(t.app, '/v1/advertisers', { name: 'Acme', ipAllowlist: ['203.0.113.0/24'], auth: ['hmac'] }));
    expect(created.result.statusCode, created.result.body).toBe(201);
    advertiser = created.result.json();
    remember(advertiser.secrets[0]?.secret as string);
    const shown = (await get(t.app, `/v1/advertisers/${advertiser.id}`)).json();
    expectOneRow(created.rows, {
      action: 'create',
      entity: 'advertiser',
      entityId: advertiser.id,
      before: null,
      after: { ...shown, secrets: [{ ...shown.secrets[0], secret: '[redacted]' }] },
    });

    const updated = await audited(() => patch(t.app, `/v1/advertisers/${advertiser.id}`, { name: 'Acme Corp', rateLimit: { perS: 50 } }));
    expect(updated.result.statusCode, updated.result.body).toBe(200);
    expectOneRow(updated.rows, { action: 'update', entity: 'advertiser', entityId: advertiser.id, before: shown, after: updated.result.json() });
    expect((updated.rows[0]?.after as { name: string }).name).toBe('Acme Corp');

    const rotated = await audited(() => post(t.app, `/v1/advertisers/${advertiser.id}/secrets`, {}));
    expect(rotated.result.statusCode, rotated.result.body).toBe(201);
    const secret = rotated.result.json();
    remember(secret.secret);
    const secretView = { id: secret.id, advertiserId: advertiser.id, secret: '[redacted]', createdAt: secret.createdAt, revokedAt: null };
    expectOneRow(rotated.rows, { action: 'create', entity: 'advertiser_secret', entityId: secret.id, before: null, after: secretView });

    const revoked = await audited(() =>
      t.app.inject({ method: 'DELETE', url: `/v1/advertisers/${advertiser.id}/secrets/${secret.id}`, headers: auth() }),
    );
    expect(revoked.result.statusCode).toBe(204);
    const [stored] = await t.sql`select revoked_at from advertiser_secrets where id = ${secret.id}`;
    expectOneRow(revoked.rows, {
      action: 'revoke',
      entity: 'advertiser_secret',
      entityId: secret.id,
      before: secretView,
      after: { ...secretView, revokedAt: (stored?.revoked_at as Date).toISOString() },
    });
  });

  it('publisher create, update and enable', async () => {
    const created = await audited(() => post(t.app, '/v1/publishers', { name: 'Pub', postbackUrl: 'https://pub.example/pb?c={clickid}' }));
    expect(created.result.statusCode, created.result.body).toBe(201);
    const body = created.result.json();
    publisherId = body.id;
    remember(body.secret);
    const shown = (await get(t.app, `/v1/publishers/${publisherId}`)).json();
    expectOneRow(created.rows, { action: 'create', entity: 'publisher', entityId: publisherId, before: null, after: { ...shown, secret: '[redacted]' } });

    const updated = await audited(() => patch(t.app, `/v1/publishers/${publisherId}`, { method: 'POST' }));
    expect(updated.result.statusCode, updated.result.body).toBe(200);
    expectOneRow(updated.rows, { action: 'update', entity: 'publisher', entityId: publisherId, before: shown, after: updated.result.json() });

    // Disabled as a 410 from the endpoint would (delivery/endpoint.ts); not an admin write, so not audited.
    await t.sql`update publishers set disabled_at = now(), disabled_reason = '410 Gone', updated_at = now() where id = ${publisherId}`;
    const [disabled] = await t.sql`select disabled_at, updated_at from publishers where id = ${publisherId}`;
    const enabled = await audited(() => post(t.app, `/v1/publishers/${publisherId}/enable`, undefined));
    expect(enabled.result.statusCode, enabled.result.body).toBe(200);
    const { resumedDeliveries: _, ...after } = enabled.result.json();
    expectOneRow(enabled.rows, {
      action: 'enable',
      entity: 'publisher',
      entityId: publisherId,
      before: {
        ...(updated.result.json() as object),
        disabled: true,
        disabledAt: (disabled?.disabled_at as Date).toISOString(),
        disabledReason: '410 Gone',
        updatedAt: (disabled?.updated_at as Date).toISOString(),
      },
      after,
    });
    expect(after.disabled).toBe(false);

    // Enabling an enabled endpoint changes nothing, so there is nothing to audit.
    const again = await audited(() => post(t.app, `/v1/publishers/${publisherId}/enable`, undefined));
    expect(again.result.statusCode).toBe(200);
    expect(again.rows).toEqual([]);
  });

  it('offer create and update', async () => {
    const created = await audited(() =>
      post(t.app, '/v1/offers', { advertiserId: advertiser.id, name: 'Offer', url: 'https://adv.example/lp?cid={clickid}', payout: '2.50', currency: 'USD' }),
    );
    expect(created.result.statusCode, created.result.body).toBe(201);
    offerId = created.result.json().id;
    expectOneRow(created.rows, { action: 'create', entity: 'offer', entityId: offerId, before: null, after: created.result.json() });

    const updated = await audited(() => patch(t.app, `/v1/offers/${offerId}`, { payout: '3.10' }));
    expect(updated.result.statusCode, updated.result.body).toBe(200);
    expectOneRow(updated.rows, { action: 'update', entity: 'offer', entityId: offerId, before: created.result.json(), after: updated.result.json() });
    expect(updated.rows[0]?.before).toMatchObject({ payout: '2.50' });
    expect(updated.rows[0]?.after).toMatchObject({ payout: '3.10' });
  });

  it('two concurrent changes of one offer chain: the second one\'s before is the first one\'s after', async () => {
    const { rows } = await audited(() =>
      Promise.all([patch(t.app, `/v1/offers/${offerId}`, { name: 'First' }), patch(t.app, `/v1/offers/${offerId}`, { name: 'Second' })]),
    );
    expect(rows).toHaveLength(2);
    const [earlier, later] = rows as [AuditRow, AuditRow];
    expect(later.before).toEqual(earlier.after);
    const [stored] = await t.sql`select name from offers where id = ${offerId}`;
    expect((later.after as { name: string }).name).toBe(stored?.name);
    await patch(t.app, `/v1/offers/${offerId}`, { name: 'Offer' });
  });

  it('token create and revoke, with the acting token as actor', async () => {
    const admin = await createToken(t.app, 'admin');
    rememberToken(admin.token);
    const created = await audited(() => post(t.app, '/v1/tokens', { role: 'finance', name: 'books' }, admin.token));
    expect(created.result.statusCode).toBe(201);
    const body = created.result.json();
    rememberToken(body.token);
    const actor = { tokenId: admin.id, name: 'admin token' };
    const view = { id: body.id, name: 'books', role: 'finance', token: '[redacted]', createdAt: body.createdAt, revokedAt: null };
    expectOneRow(created.rows, { action: 'create', entity: 'token', entityId: body.id, before: null, after: view, actor });

    const revoked = await audited(() => t.app.inject({ method: 'DELETE', url: `/v1/tokens/${body.id}`, headers: auth(admin.token) }));
    expect(revoked.result.statusCode).toBe(204);
    const [stored] = await t.sql`select revoked_at from api_tokens where id = ${body.id}`;
    expectOneRow(revoked.rows, {
      action: 'revoke',
      entity: 'token',
      entityId: body.id,
      before: view,
      after: { ...view, revokedAt: (stored?.revoked_at as Date).toISOString() },
      actor,
    });
  });

  it('fx rates: the first PUT of a day creates, the next replaces, each with the set before and after', async () => {
    const first = await audited(() => t.app.inject({ method: 'PUT', url: '/v1/fx-rates/2026-03-01', headers: auth(), payload: { base: 'USD', rates: { EUR: '0.92' } } }));
    expect(first.result.statusCode, first.result.body).toBe(200);
    expectOneRow(first.rows, { action: 'create', entity: 'fx_rates', entityId: '2026-03-01', before: null, after: first.result.json() });
    const second = await audited(() =>
      t.app.inject({ method: 'PUT', url: '/v1/fx-rates/2026-03-01', headers: auth(), payload: { base: 'USD', rates: { JPY: '151.3' } } }),
    );
    expect(second.result.statusCode).toBe(200);
    expectOneRow(second.rows, { action: 'update', entity: 'fx_rates', entityId: '2026-03-01', before: first.result.json(), after: second.result.json() });
  });

  it('the audit holds no secret in any encoding, anywhere in its rows', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(20);
    const [dump] = await t.sql<{ text: string }[]>`select coalesce(string_agg(row_to_json(a)::text, E'\n'), '') as text from admin_audit a`;
    const api = (await get(t.app, '/v1/audit?limit=500')).body;
    for (const text of [dump?.text ?? '', api]) {
      expect(text).toContain('[redacted]');
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});

describe('a refused write leaves no audit row', () => {
  it('400s and 404s change nothing, the audit included', async () => {
    const before = await auditRows();
    const refusals = [
      await patch(t.app, `/v1/advertisers/${advertiser.id}`, { ipAllowlist: ['not-a-cidr'] }),
      await post(t.app, '/v1/offers', { advertiserId: advertiser.id, name: 'x', url: 'https://adv.example/', payout: '1.234', currency: 'USD' }),
      await patch(t.app, `/v1/offers/${offerId}`, { payout: 'free' }),
      await post(t.app, '/v1/publishers', { name: 'p', postbackUrl: 'ftp://pub.example/' }),
      await post(t.app, '/v1/tokens', { role: 'root', name: 'x' }),
      await t.app.inject({ method: 'PUT', url: '/v1/fx-rates/2026-02-30', headers: auth(), payload: { base: 'USD', rates: { EUR: '0.9' } } }),
      await t.app.inject({ method: 'PUT', url: '/v1/fx-rates/2026-03-02', headers: auth(), payload: { base: 'USD', rates: { EUR: '-1' } } }),
    ];
    for (const res of refusals) expectApiError(res, 400, 'invalid_request');
    expectApiError(await t.app.inject({ method: 'DELETE', url: '/v1/tokens/tok_nope', headers: auth() }), 404, 'not_found');
    expectApiError(await t.app.inject({ method: 'DELETE', url: `/v1/advertisers/${advertiser.id}/secrets/sec_nope`, headers: auth() }), 404, 'not_found');
    expect(await auditRows()).toEqual(before);
  });

  it('a write whose transaction fails at commit leaves neither the change nor its audit row', async () => {
    // A deferred constraint trigger fails the transaction at COMMIT, after the audit row was inserted.
    await t.sql.unsafe(`create function fail_at_commit() returns trigger language plpgsql as $$ begin raise exception 'refused at commit'; end $$`);
    await t.sql.unsafe(`create constraint trigger advertisers_fail_at_commit after insert on advertisers
      deferrable initially deferred for each row execute function fail_at_commit()`);
    try {
      const before = await auditRows();
      const [{ n: advertisersBefore } = { n: 0 }] = await t.sql<{ n: number }[]>`select count(*)::int as n from advertisers`;
      const res = await post(t.app, '/v1/advertisers', { name: 'Doomed', auth: ['hmac'] });
      expect(res.statusCode).toBe(500);
      expect(await auditRows()).toEqual(before);
      const [{ n: advertisersAfter } = { n: 0 }] = await t.sql<{ n: number }[]>`select count(*)::int as n from advertisers`;
      expect(advertisersAfter).toBe(advertisersBefore);
    } finally {
      await t.sql.unsafe('drop trigger advertisers_fail_at_commit on advertisers');
      await t.sql.unsafe('drop function fail_at_commit()');
    }
  });
});

describe('the database keeps the audit append-only', () => {
  async function refused(statement: string): Promise<string> {
    const err = await t.engine.sql.unsafe(statement).then(
      () => undefined,
      (e: { code: string }) => e,
    );
    expect(err, `${statement} should have been refused`).toBeDefined();
    return (err as { code: string }).code;
  }

  it('refuses UPDATE, DELETE, TRUNCATE and turning its triggers off, even for a superuser engine role', async () => {
    const before = await auditRows();
    expect(before.length).toBeGreaterThan(0);
    for (const statement of [
      `update admin_audit set actor_name = 'someone else'`,
      `update admin_audit set after = null where entity = 'offer'`,
      `delete from admin_audit`,
      `truncate admin_audit`,
      'alter table admin_audit disable trigger admin_audit_append_only',
      'alter table admin_audit disable trigger all',
      'drop trigger admin_audit_append_only on admin_audit',
      'drop table admin_audit',
      'drop function refuse_admin_audit_change() cascade',
      'create or replace function refuse_admin_audit_change() returns trigger language plpgsql as $$ begin return old; end $$',
    ]) {
      expect(await refused(statement), statement).toBe('42501');
    }
    const replica = await t.engine.txSql
      .begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        await tx`delete from admin_audit`;
      })
      .then(
        () => undefined,
        (e: { code: string }) => e,
      );
    expect(replica?.code).toBe('42501');
    expect(await auditRows()).toEqual(before);
  });
});

describe('GET /v1/audit', () => {
  it('pages newest first through every row without gaps or repeats', async () => {
    const all = await auditRows();
    const seen: { at: string; entity: string; entityId: string; action: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(t.app, `/v1/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.items.length).toBeLessThanOrEqual(3);
      seen.push(...body.items);
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    const newestFirst = [...all].sort((a, b) => b.at.getTime() - a.at.getTime() || Number(b.id - a.id));
    expect(seen.map((i) => [i.entity, i.entityId, i.action])).toEqual(newestFirst.map((r) => [r.entity, r.entity_id, r.action]));
    expect(pages).toBe(Math.ceil(all.length / 3));
  });

  it('shows each item in the contract shape and filters by entity, entity id and time', async () => {
    const res = await get(t.app, `/v1/audit?entity=offer&entityId=${offerId}`);
    expect(res.statusCode).toBe(200);
    const items = res.json().items;
    expect(items.map((i: { action: string }) => i.action)).toEqual(['update', 'update', 'update', 'update', 'create']);
    expect(Object.keys(items[0]).sort()).toEqual(['action', 'actor', 'after', 'at', 'before', 'entity', 'entityId']);
    expect(items[3]).toMatchObject({ actor: ENV_ACTOR, entity: 'offer', entityId: offerId, before: { payout: '2.50' }, after: { payout: '3.10' } });
    expect(items[0]).toMatchObject({ after: { name: 'Offer', payout: '3.10' } });

    const tokens = (await get(t.app, '/v1/audit?entity=token&limit=500')).json().items as { entity: string }[];
    const [{ n } = { n: 0 }] = await t.sql<{ n: number }[]>`select count(*)::int as n from admin_audit where entity = 'token'`;
    expect(tokens).toHaveLength(n);
    expect(tokens.every((i) => i.entity === 'token')).toBe(true);

    const [newest] = await t.sql<{ at: Date }[]>`select max(at) as at from admin_audit`;
    const at = (newest?.at as Date).toISOString();
    const fromNewest = (await get(t.app, `/v1/audit?from=${at}&limit=500`)).json().items as { at: string }[];
    const [{ n: atNewest } = { n: 0 }] = await t.sql<{ n: number }[]>`select count(*)::int as n from admin_audit where at >= ${newest?.at as Date}`;
    expect(fromNewest).toHaveLength(atNewest);
    const beforeNewest = (await get(t.app, `/v1/audit?to=${at}&limit=500`)).json().items as { at: string }[];
    expect(beforeNewest.length + fromNewest.length).toBe((await auditRows()).length);
    expect(beforeNewest.every((i) => i.at < at)).toBe(true);
  });

  it('refuses bad filters in the contract shape', async () => {
    expectApiError(await get(t.app, '/v1/audit?limit=0'), 400, 'invalid_request', ['limit']);
    expectApiError(await get(t.app, '/v1/audit?limit=abc'), 400, 'invalid_request', ['limit']);
    expectApiError(await get(t.app, '/v1/audit?from=2026-02-30'), 400, 'invalid_request', ['from']);
    expectApiError(await get(t.app, '/v1/audit?to=yesterday'), 400, 'invalid_request', ['to']);
    expectApiError(await get(t.app, '/v1/audit?entity=conversion'), 400, 'invalid_request', ['entity']);
    expectApiError(await get(t.app, '/v1/audit?cursor=bm9wZQ'), 400, 'invalid_request', ['cursor']);
    expectApiError(await get(t.app, '/v1/audit?sort=asc'), 400, 'invalid_request', ['sort']);
  });

  it('is for admins only', async () => {
    expectApiError(await t.app.inject({ method: 'GET', url: '/v1/audit' }), 401, 'unauthorized');
    for (const role of ['finance', 'analyst'] as const) {
      const { token } = await createToken(t.app, role);
      expectApiError(await get(t.app, '/v1/audit', token), 403, 'forbidden');
    }
    expect((await get(t.app, '/v1/audit', ADMIN)).statusCode).toBe(200);
  });
});

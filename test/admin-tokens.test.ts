import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTSTRAP_TOKEN_ID, ensureBootstrapToken, TokenVerifier } from '../src/auth/tokens.js';
import { adminTablesSnapshot, countRows, createToken, expectApiError, get, post, startSecondNode, type SecondNode } from './helpers/admin.js';
import { ADMIN, auth, startTestEngine, type TestEngine } from './helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t?.close();
});

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();
const revoke = (id: string, token = ADMIN) => t.app.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: auth(token) });

describe('tokens: happy path', () => {
  for (const role of ['admin', 'analyst', 'finance'] as const) {
    it(`creates a${role === 'admin' ? 'n' : ''} ${role} token (201 {id, token}) stored only as its SHA-256`, async () => {
      const res = await post(t.app, '/v1/tokens', { role, name: `${role} for ops` });
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(body.id).toMatch(/^tok_[A-Za-z0-9_-]+$/);
      expect(body.token).toMatch(/^[A-Za-z0-9._~+/=-]{32,512}$/);
      expect(body.role).toBe(role);

      const [row] = await t.sql`select id, name, role, token_hash, revoked_at from api_tokens where id = ${body.id}`;
      expect(row).toMatchObject({ id: body.id, name: `${role} for ops`, role, revoked_at: null });
      expect((row?.token_hash as Buffer).equals(sha256(body.token))).toBe(true);
      // No column of any token row holds the bearer token in clear, in any encoding we would use.
      const leaks = await t.sql<{ n: number }[]>`
        select count(*)::int as n from api_tokens t
        where strpos(row_to_json(t)::text, ${body.token}) > 0
           or strpos(encode(t.token_hash, 'escape'), ${body.token}) > 0`;
      expect(leaks[0]?.n).toBe(0);
    });
  }

  it('an admin token created through the API can do admin work; analyst and finance tokens are known but forbidden', async () => {
    const admin = await createToken(t.app, 'admin');
    const created = await post(t.app, '/v1/advertisers', { name: 'Via token', auth: ['hmac'] }, admin.token);
    expect(created.statusCode, created.body).toBe(201);
    for (const role of ['analyst', 'finance'] as const) {
      const { token } = await createToken(t.app, role);
      // 403 rather than 401 proves the token was recognised and only its role was lacking.
      expectApiError(await get(t.app, '/v1/advertisers', token), 403, 'forbidden');
    }
  });

  it('GET /v1/tokens lists tokens without their secret or hash', async () => {
    const created = await createToken(t.app, 'finance');
    const res = await get(t.app, '/v1/tokens');
    expect(res.statusCode).toBe(200);
    const item = res.json().items.find((i: { id: string }) => i.id === created.id);
    expect(item).toEqual({ id: created.id, name: 'finance token', role: 'finance', createdAt: expect.any(String), revokedAt: null });
    expect(res.body).not.toContain(created.token);
    expect(res.body).not.toContain(sha256(created.token).toString('hex'));
    expect(res.body).not.toContain(sha256(created.token).toString('base64'));
  });

  it('DELETE revokes at once, here and on another node, and the revocation is recorded', async () => {
    const victim = await createToken(t.app, 'admin');
    let other: SecondNode | undefined;
    try {
      other = await startSecondNode(t.url);
      expect((await get(other.app, '/v1/advertisers', victim.token)).statusCode).toBe(200);

      const res = await revoke(victim.id);
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe('');
      // No polling: the very next request on either node is refused.
      expectApiError(await get(t.app, '/v1/advertisers', victim.token), 401, 'unauthorized');
      expectApiError(await get(other.app, '/v1/advertisers', victim.token), 401, 'unauthorized');
    } finally {
      await other?.close();
    }
    const [row] = await t.sql`select revoked_at from api_tokens where id = ${victim.id}`;
    expect(row?.revoked_at).toBeInstanceOf(Date);
    const listed = (await get(t.app, '/v1/tokens')).json().items.find((i: { id: string }) => i.id === victim.id);
    expect(listed.revokedAt).toEqual(expect.any(String));
  });

  it('ADMIN_TOKEN from the environment works and is never written to the database', async () => {
    expect((await get(t.app, '/v1/tokens')).statusCode).toBe(200);
    const [row] = await t.sql<{ n: number }[]>`select count(*)::int as n from api_tokens where token_hash = ${sha256(ADMIN)}`;
    expect(row?.n).toBe(0);
  });
});

describe('tokens: bootstrap admin token', () => {
  it('is generated once per database when ADMIN_TOKEN is unset, stored hashed, and verifies as admin', async () => {
    // A database of its own: the shared engine's database must not gain a bootstrap row.
    const fresh = await startTestEngine({ adminToken: undefined });
    try {
      expect(await ensureBootstrapToken(fresh.sql, 'an-env-token-that-is-long')).toBeUndefined();
      expect(await countRows(fresh.sql, 'api_tokens')).toBe(0);

      const generated = await ensureBootstrapToken(fresh.sql, undefined);
      expect(generated).toEqual(expect.any(String));
      const token = generated as string;
      expect(await ensureBootstrapToken(fresh.sql, undefined)).toBeUndefined();

      const rows = await fresh.sql`select id, role, token_hash from api_tokens`;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: BOOTSTRAP_TOKEN_ID, role: 'admin' });
      expect((rows[0]?.token_hash as Buffer).equals(sha256(token))).toBe(true);
      expect(await new TokenVerifier(fresh.sql, undefined).verify(token)).toMatchObject({ role: 'admin' });
      expect((await get(fresh.app, '/v1/tokens', token)).statusCode).toBe(200);
    } finally {
      await fresh.close();
    }
  });
});

describe('tokens: errors', () => {
  const invalid: Array<{ why: string; body: unknown; paths: string[] }> = [
    { why: 'an unknown role', body: { role: 'root', name: 'x' }, paths: ['role'] },
    { why: 'missing role and name', body: {}, paths: ['role', 'name'] },
    { why: 'a blank name', body: { role: 'analyst', name: ' ' }, paths: ['name'] },
    { why: 'unknown fields, each reported', body: { role: 'analyst', name: 'x', token: 'choose-my-own', expiresAt: 'never' }, paths: ['token', 'expiresAt'] },
  ];
  for (const c of invalid) {
    it(`POST refuses ${c.why} with 400 naming the fields, storing nothing`, async () => {
      const before = await adminTablesSnapshot(t.sql);
      expectApiError(await post(t.app, '/v1/tokens', c.body), 400, 'invalid_request', c.paths);
      expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    });
  }

  it('DELETE of an unknown or already revoked token is 404', async () => {
    const victim = await createToken(t.app, 'analyst');
    expect((await revoke(victim.id)).statusCode).toBe(204);
    const before = await adminTablesSnapshot(t.sql);
    expectApiError(await revoke(victim.id), 404, 'not_found');
    expectApiError(await revoke('tok_missing'), 404, 'not_found');
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });
});

describe('tokens: security', () => {
  it('401 without a valid token on every token route', async () => {
    const victim = await createToken(t.app, 'analyst');
    const before = await adminTablesSnapshot(t.sql);
    for (const headers of [{}, { authorization: `Bearer ${victim.token}x` }, { authorization: `bearer ${ADMIN}` }]) {
      expectApiError(await t.app.inject({ method: 'GET', url: '/v1/tokens', headers }), 401, 'unauthorized');
      expectApiError(await t.app.inject({ method: 'POST', url: '/v1/tokens', headers, payload: { role: 'admin', name: 'x' } }), 401, 'unauthorized');
      expectApiError(await t.app.inject({ method: 'DELETE', url: `/v1/tokens/${victim.id}`, headers }), 401, 'unauthorized');
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });

  it('analyst and finance tokens cannot mint, list or revoke tokens (no privilege escalation)', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    const before = await adminTablesSnapshot(t.sql);
    for (const { token } of [analyst, finance]) {
      expectApiError(await post(t.app, '/v1/tokens', { role: 'admin', name: 'escalate' }, token), 403, 'forbidden');
      expectApiError(await get(t.app, '/v1/tokens', token), 403, 'forbidden');
      expectApiError(await revoke(analyst.id, token), 403, 'forbidden');
      expectApiError(await revoke(finance.id, token), 403, 'forbidden');
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    expect(await countRows(t.sql, 'api_tokens')).toBeGreaterThanOrEqual(2);
  });

  it('a revoked token cannot revoke others or itself', async () => {
    const admin = await createToken(t.app, 'admin');
    const other = await createToken(t.app, 'analyst');
    expect((await revoke(admin.id)).statusCode).toBe(204);
    expectApiError(await revoke(other.id, admin.token), 401, 'unauthorized');
    const [row] = await t.sql`select revoked_at from api_tokens where id = ${other.id}`;
    expect(row?.revoked_at).toBeNull();
  });
});

import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMIT_PER_S } from '../src/admin/schemas.js';
import { inRanges, parseAddress, type IpAddress } from '../src/net/cidr.js';
import {
  adminTablesSnapshot,
  createToken,
  decodeWebhookSecret,
  eventually,
  expectApiError,
  get,
  patch,
  post,
  startSecondNode,
  type SecondNode,
} from './helpers/admin.js';
import { auth, startTestEngine, type TestEngine } from './helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t?.close();
});

const ecPublicJwk = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });

async function createAdvertiser(body: object = {}) {
  const res = await post(t.app, '/v1/advertisers', { name: 'Acme', ipAllowlist: [], auth: ['hmac'], ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

describe('advertisers: happy path', () => {
  it('creates an advertiser with one secret shown once as whsec_ and stored as its 32 raw bytes', async () => {
    const res = await post(t.app, '/v1/advertisers', { name: 'Acme Ads', ipAllowlist: ['203.0.113.0/24'], auth: ['hmac'] });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.id).toMatch(/^adv_[A-Za-z0-9_-]+$/);
    expect(body.id.length).toBeLessThanOrEqual(64);
    expect(body.name).toBe('Acme Ads');
    expect(body.auth).toEqual(['hmac']);
    expect(body.secrets).toHaveLength(1);
    expect(body.secrets[0].id).toMatch(/^sec_/);
    const key = decodeWebhookSecret(body.secrets[0].secret);

    const [row] = await t.sql`select name, ip_allowlist, auth, jwt, rate_limit_per_s from advertisers where id = ${body.id}`;
    expect(row).toEqual({ name: 'Acme Ads', ip_allowlist: ['203.0.113.0/24'], auth: ['hmac'], jwt: null, rate_limit_per_s: DEFAULT_RATE_LIMIT_PER_S });
    const secrets = await t.sql`select id, secret, revoked_at from advertiser_secrets where advertiser_id = ${body.id}`;
    expect(secrets).toHaveLength(1);
    expect(secrets[0]?.id).toBe(body.secrets[0].id);
    expect(Buffer.isBuffer(secrets[0]?.secret)).toBe(true);
    expect((secrets[0]?.secret as Buffer).equals(key)).toBe(true);
    expect(secrets[0]?.revoked_at).toBeNull();
    expect(t.engine.catalog.advertisers.get(body.id)?.secrets.map((s) => s.key)).toEqual([key]);
  });

  it('normalises the allowlist to one canonical spelling per range', async () => {
    const body = await createAdvertiser({
      ipAllowlist: [
        '203.0.113.0/24',
        '2001:DB8::/32',
        '198.51.100.7',
        '2001:db8:0:0:0:0:0:1',
        '::ffff:192.0.2.1',
        '::ffff:192.0.2.0/120',
        '10.1.2.3/8',
        '2001:db8:abcd::1/48',
      ],
    });
    const expected = [
      '203.0.113.0/24',
      '2001:db8::/32',
      '198.51.100.7/32',
      '2001:db8::1/128',
      '192.0.2.1/32',
      '192.0.2.0/24',
      '10.0.0.0/8',
      '2001:db8:abcd::/48',
    ];
    expect(body.ipAllowlist).toEqual(expected);
    const [row] = await t.sql`select ip_allowlist from advertisers where id = ${body.id}`;
    expect(row?.ip_allowlist).toEqual(expected);
    // The stored spelling matches exactly what it says: a mapped host, a whole /8, nothing beside them.
    const ranges = t.engine.catalog.advertisers.get(body.id)?.allowRanges ?? [];
    const allowed = (ip: string) => inRanges(parseAddress(ip) as IpAddress, ranges);
    expect(allowed('192.0.2.1')).toBe(true);
    expect(allowed('::ffff:192.0.2.1')).toBe(true);
    expect(allowed('10.200.0.1')).toBe(true);
    expect(allowed('11.0.0.1')).toBe(false);
    expect(allowed('2001:db8:abcd:ffff::1')).toBe(true);
    expect(allowed('2001:db9::1')).toBe(false);
  });

  it('stores an empty allowlist (any address), the default rate limit, and an explicit one when given', async () => {
    const open = await createAdvertiser({ ipAllowlist: undefined });
    expect(open.ipAllowlist).toEqual([]);
    expect(open.rateLimit).toEqual({ perS: DEFAULT_RATE_LIMIT_PER_S });
    const limited = await createAdvertiser({ rateLimit: { perS: 500 } });
    expect(limited.rateLimit).toEqual({ perS: 500 });
    const rows = await t.sql`select id, ip_allowlist, rate_limit_per_s from advertisers where id in ${t.sql([open.id, limited.id])} order by rate_limit_per_s`;
    expect(rows.map((r) => [r.id, r.ip_allowlist, r.rate_limit_per_s])).toEqual([
      [open.id, [], DEFAULT_RATE_LIMIT_PER_S],
      [limited.id, [], 500],
    ]);
  });

  it('stores JWT settings with an inline public JWKS', async () => {
    const jwk = ecPublicJwk();
    const jwt = { jwks: { keys: [{ ...jwk, kid: 'k1' }] }, issuer: 'https://adv.example', algorithms: ['ES256'] };
    const body = await createAdvertiser({ auth: ['hmac', 'jwt'], jwt });
    expect(body.auth).toEqual(['hmac', 'jwt']);
    expect(body.jwt).toEqual(jwt);
    const [row] = await t.sql`select auth, jwt from advertisers where id = ${body.id}`;
    expect(row).toEqual({ auth: ['hmac', 'jwt'], jwt });
  });

  it('GET on the item and the collection returns what was stored, never a secret', async () => {
    const created = await createAdvertiser({ name: 'Listed', ipAllowlist: ['198.51.100.0/24'] });
    const secretText: string = created.secrets[0].secret;
    const keyBase64 = secretText.slice('whsec_'.length);

    const item = await get(t.app, `/v1/advertisers/${created.id}`);
    expect(item.statusCode).toBe(200);
    const view = item.json();
    expect(view).toMatchObject({ id: created.id, name: 'Listed', ipAllowlist: ['198.51.100.0/24'], auth: ['hmac'] });
    expect(view.secrets).toEqual([{ id: created.secrets[0].id, createdAt: expect.any(String) }]);
    expect(new Date(view.createdAt).toISOString()).toBe(view.createdAt);

    const list = await get(t.app, '/v1/advertisers');
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((a: { id: string }) => a.id)).toContain(created.id);
    for (const res of [item, list]) {
      expect(res.body).not.toContain(keyBase64);
      expect(res.body).not.toContain('whsec_');
    }
  });

  it('PATCH changes name, allowlist, auth and rate limit in the stored row and leaves the rest alone', async () => {
    const created = await createAdvertiser({ name: 'Before', ipAllowlist: ['203.0.113.0/24'] });
    const res = await patch(t.app, `/v1/advertisers/${created.id}`, {
      name: 'After',
      ipAllowlist: ['2001:DB8::/48'],
      rateLimit: { perS: 42 },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ id: created.id, name: 'After', ipAllowlist: ['2001:db8::/48'], auth: ['hmac'], rateLimit: { perS: 42 } });
    const [row] = await t.sql`select name, ip_allowlist, auth, rate_limit_per_s, updated_at > created_at as touched from advertisers where id = ${created.id}`;
    expect(row).toEqual({ name: 'After', ip_allowlist: ['2001:db8::/48'], auth: ['hmac'], rate_limit_per_s: 42, touched: true });

    // Switching to JWT needs settings; removing JWT again clears them.
    const jwt = { jwks: { keys: [ecPublicJwk()] }, issuer: 'iss-1' };
    const toJwt = await patch(t.app, `/v1/advertisers/${created.id}`, { auth: ['jwt'], jwt });
    expect(toJwt.statusCode, toJwt.body).toBe(200);
    expect(toJwt.json()).toMatchObject({ auth: ['jwt'], jwt });
    const back = await patch(t.app, `/v1/advertisers/${created.id}`, { auth: ['hmac'], jwt: null });
    expect(back.statusCode, back.body).toBe(200);
    const [after] = await t.sql`select auth, jwt from advertisers where id = ${created.id}`;
    expect(after).toEqual({ auth: ['hmac'], jwt: null });
  });

  it('PATCH takes effect on another node over the same database within 5 s', async () => {
    const created = await createAdvertiser({ name: 'Shared', ipAllowlist: ['203.0.113.0/24'] });
    let other: SecondNode | undefined;
    try {
      other = await startSecondNode(t.url);
      const node = other;
      expect(node.engine.catalog.advertisers.get(created.id)?.name).toBe('Shared');

      const res = await patch(t.app, `/v1/advertisers/${created.id}`, { name: 'Renamed', ipAllowlist: ['198.51.100.0/24'] });
      expect(res.statusCode, res.body).toBe(200);
      const seen = await eventually(
        () => node.engine.catalog.advertisers.get(created.id),
        (a) => a?.name === 'Renamed',
        { timeoutMs: 5000 },
      );
      expect(seen?.ipAllowlist).toEqual(['198.51.100.0/24']);
      expect(seen?.allowRanges.map((r) => r.text)).toEqual(['198.51.100.0/24']);
      // The other node's API serves the new state too, not only its in-memory map.
      const viaApi = await get(node.app, `/v1/advertisers/${created.id}`);
      expect(viaApi.json()).toMatchObject({ name: 'Renamed', ipAllowlist: ['198.51.100.0/24'] });
    } finally {
      await other?.close();
    }
  });
});

describe('advertisers: secret rotation', () => {
  it('POST /secrets adds a second active secret; DELETE revokes one (204) and every node forgets it', async () => {
    const created = await createAdvertiser();
    const firstKey = decodeWebhookSecret(created.secrets[0].secret);
    let other: SecondNode | undefined;
    try {
      other = await startSecondNode(t.url);
      const node = other;

      const added = await post(t.app, `/v1/advertisers/${created.id}/secrets`, undefined);
      expect(added.statusCode, added.body).toBe(201);
      const second = added.json();
      expect(second.id).toMatch(/^sec_/);
      expect(second.id).not.toBe(created.secrets[0].id);
      const secondKey = decodeWebhookSecret(second.secret);
      expect(secondKey.equals(firstKey)).toBe(false);

      const active = await t.sql`select id, secret from advertiser_secrets where advertiser_id = ${created.id} and revoked_at is null order by created_at`;
      expect(active.map((r) => r.id)).toEqual([created.secrets[0].id, second.id]);
      expect((active[1]?.secret as Buffer).equals(secondKey)).toBe(true);
      const keysHere = () => (t.engine.catalog.advertisers.get(created.id)?.secrets ?? []).map((s) => s.id).sort();
      expect(keysHere()).toEqual([created.secrets[0].id, second.id].sort());
      await eventually(
        () => (node.engine.catalog.advertisers.get(created.id)?.secrets ?? []).length,
        (n) => n === 2,
      );

      // The new secret is shown once: GET lists its id only.
      const view = await get(t.app, `/v1/advertisers/${created.id}`);
      expect(view.json().secrets.map((s: { id: string }) => s.id).sort()).toEqual([created.secrets[0].id, second.id].sort());
      expect(view.body).not.toContain(second.secret.slice('whsec_'.length));

      const revoked = await t.app.inject({ method: 'DELETE', url: `/v1/advertisers/${created.id}/secrets/${created.secrets[0].id}`, headers: auth() });
      expect(revoked.statusCode, revoked.body).toBe(204);
      expect(revoked.body).toBe('');
      const [row] = await t.sql`select revoked_at from advertiser_secrets where id = ${created.secrets[0].id}`;
      expect(row?.revoked_at).toBeInstanceOf(Date);
      expect(keysHere()).toEqual([second.id]);
      const remaining = await eventually(
        () => (node.engine.catalog.advertisers.get(created.id)?.secrets ?? []).map((s) => s.id),
        (ids) => ids.length === 1,
      );
      expect(remaining).toEqual([second.id]);
    } finally {
      await other?.close();
    }
  });

  it('DELETE of a revoked, unknown or another advertiser’s secret is 404 and changes nothing', async () => {
    const a = await createAdvertiser();
    const b = await createAdvertiser();
    const first = await t.app.inject({ method: 'DELETE', url: `/v1/advertisers/${a.id}/secrets/${a.secrets[0].id}`, headers: auth() });
    expect(first.statusCode).toBe(204);
    const before = await adminTablesSnapshot(t.sql);
    for (const url of [
      `/v1/advertisers/${a.id}/secrets/${a.secrets[0].id}`,
      `/v1/advertisers/${a.id}/secrets/sec_nope`,
      `/v1/advertisers/${a.id}/secrets/${b.secrets[0].id}`,
      `/v1/advertisers/adv_nope/secrets/${b.secrets[0].id}`,
    ]) {
      const res = await t.app.inject({ method: 'DELETE', url, headers: auth() });
      expectApiError(res, 404, 'not_found');
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    expect(t.engine.catalog.advertisers.get(b.id)?.secrets).toHaveLength(1);
  });
});

describe('advertisers: errors', () => {
  const invalid = [
    { why: 'missing name and auth', body: { ipAllowlist: [] }, paths: ['name', 'auth'] },
    { why: 'blank name', body: { name: '   ', auth: ['hmac'] }, paths: ['name'] },
    { why: 'name with a control character', body: { name: 'a\u0000b', auth: ['hmac'] }, paths: ['name'] },
    { why: 'empty auth', body: { name: 'x', auth: [] }, paths: ['auth'] },
    { why: 'unknown auth method', body: { name: 'x', auth: ['basic'] }, paths: ['auth.0'] },
    { why: 'repeated auth method', body: { name: 'x', auth: ['hmac', 'hmac'] }, paths: ['auth'] },
    { why: 'jwt auth without jwt settings', body: { name: 'x', auth: ['jwt'] }, paths: ['jwt'] },
    {
      why: 'unknown fields, each reported at its own path',
      body: { name: 'x', auth: ['hmac'], colour: 'red', secret: 'mine', rateLimit: { perS: 5, burst: 9 } },
      paths: ['colour', 'secret', 'rateLimit.burst'],
    },
    { why: 'non-canonical and out-of-range CIDRs', body: { name: 'x', auth: ['hmac'], ipAllowlist: ['10.0.0.0/8', '127.1', '10.0.0.0/33', '0x7f.0.0.1', '2130706433', 'fe80::1%eth0'] }, paths: ['ipAllowlist.1', 'ipAllowlist.2', 'ipAllowlist.3', 'ipAllowlist.4', 'ipAllowlist.5'] },
    { why: 'rate limit below 1 or fractional', body: { name: 'x', auth: ['hmac'], rateLimit: { perS: 0.5 } }, paths: ['rateLimit.perS'] },
    {
      why: 'an HMAC JWT algorithm (a public key must never become a shared secret)',
      body: { name: 'x', auth: ['jwt'], jwt: { jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] }, issuer: 'i', algorithms: ['HS256'] } },
      paths: ['jwt.algorithms.0'],
    },
    {
      why: 'a symmetric JWK',
      body: { name: 'x', auth: ['jwt'], jwt: { jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, issuer: 'i' } },
      paths: ['jwt.jwks.keys.0.kty'],
    },
    {
      why: 'a private JWK',
      body: { name: 'x', auth: ['jwt'], jwt: { jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'secret' }] }, issuer: 'i' } },
      paths: ['jwt.jwks.keys.0'],
    },
    { why: 'both jwksUrl and jwks', body: { name: 'x', auth: ['jwt'], jwt: { jwksUrl: 'https://adv.example/jwks', jwks: { keys: [{ kty: 'EC' }] }, issuer: 'i' } }, paths: ['jwt.jwksUrl'] },
    { why: 'a jwksUrl that is not http(s)', body: { name: 'x', auth: ['jwt'], jwt: { jwksUrl: 'file:///etc/passwd', issuer: 'i' } }, paths: ['jwt.jwksUrl'] },
    { why: 'a JSON array instead of an object', body: [{ name: 'x' }], paths: [''] },
  ];

  for (const c of invalid) {
    it(`POST refuses ${c.why} with 400 naming the fields, and stores nothing`, async () => {
      const before = await adminTablesSnapshot(t.sql);
      const res = await post(t.app, '/v1/advertisers', c.body);
      expectApiError(res, 400, 'invalid_request', c.paths);
      expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    });
  }

  it('PATCH refuses bad fields, unknown fields and jwt auth without settings, and the row stays as it was', async () => {
    const created = await createAdvertiser({ name: 'Stable', ipAllowlist: ['203.0.113.0/24'] });
    const before = await adminTablesSnapshot(t.sql);
    const cases: Array<[unknown, string[]]> = [
      [{ name: '' }, ['name']],
      [{ ipAllowlist: ['203.0.113.0/24', '127.1'] }, ['ipAllowlist.1']],
      [{ auth: ['jwt'] }, ['jwt']],
      [{ id: 'adv_other', seq: 5 }, ['id', 'seq']],
      [{ secrets: [] }, ['secrets']],
    ];
    for (const [body, paths] of cases) {
      const res = await patch(t.app, `/v1/advertisers/${created.id}`, body);
      expectApiError(res, 400, 'invalid_request', paths);
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    expect(t.engine.catalog.advertisers.get(created.id)?.name).toBe('Stable');
  });

  it('unknown advertiser IDs are 404 on GET, PATCH and POST /secrets', async () => {
    const before = await adminTablesSnapshot(t.sql);
    expectApiError(await get(t.app, '/v1/advertisers/adv_missing'), 404, 'not_found');
    expectApiError(await patch(t.app, '/v1/advertisers/adv_missing', { name: 'x' }), 404, 'not_found');
    expectApiError(await post(t.app, '/v1/advertisers/adv_missing/secrets', undefined), 404, 'not_found');
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });
});

describe('advertisers: security', () => {
  it('401 without a token, with a malformed header or an unknown token; nothing is created', async () => {
    const before = await adminTablesSnapshot(t.sql);
    const body = { name: 'Intruder', auth: ['hmac'] };
    for (const headers of [
      {},
      { authorization: 'test-admin-token-0123456789' },
      { authorization: 'Basic dGVzdDp0ZXN0' },
      { authorization: 'Bearer ' },
      { authorization: 'Bearer pbe_not-a-real-token' },
      { authorization: 'Bearer test-admin-token-012345678' },
    ]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/advertisers', headers, payload: body });
      expectApiError(res, 401, 'unauthorized');
      expectApiError(await t.app.inject({ method: 'GET', url: '/v1/advertisers', headers }), 401, 'unauthorized');
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });

  it('403 for analyst and finance tokens on every advertiser route', async () => {
    const created = await createAdvertiser();
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    const before = await adminTablesSnapshot(t.sql);
    const routes = [
      { method: 'GET', url: '/v1/advertisers' },
      { method: 'GET', url: `/v1/advertisers/${created.id}` },
      { method: 'POST', url: '/v1/advertisers', payload: { name: 'x', auth: ['hmac'] } },
      { method: 'PATCH', url: `/v1/advertisers/${created.id}`, payload: { name: 'x' } },
      { method: 'POST', url: `/v1/advertisers/${created.id}/secrets` },
      { method: 'DELETE', url: `/v1/advertisers/${created.id}/secrets/${created.secrets[0].id}` },
    ] as const;
    for (const { token } of [analyst, finance]) {
      for (const route of routes) {
        const res = await t.app.inject({ ...route, headers: auth(token) });
        expectApiError(res, 403, 'forbidden');
      }
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });

  it('an unauthenticated request is refused as 401 before its body is even parsed', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/advertisers',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    expectApiError(res, 401, 'unauthorized');
  });
});

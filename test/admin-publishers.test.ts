import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const URL_OK = 'https://pub.example/pb?c={sub1}&p={payout}&cur={currency}&id={clickid}';

async function createPublisher(body: object = {}) {
  const res = await post(t.app, '/v1/publishers', { name: 'Pub', postbackUrl: URL_OK, ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** Destinations an outbound postback must never reach: the engine's own host, the LAN, cloud metadata. */
const PRIVATE_URLS = [
  'http://127.0.0.1/pb',
  'http://127.1/pb', // the URL parser canonicalises this to 127.0.0.1; it must still be caught
  'http://0x7f.0.0.1/pb',
  'http://2130706433/pb',
  'http://localhost:8080/pb',
  'http://api.localhost/pb',
  'http://10.1.2.3/pb',
  'http://172.16.0.1/pb',
  'http://192.168.1.1/pb',
  'http://169.254.169.254/latest/meta-data/',
  'http://metadata.google.internal/computeMetadata/v1/',
  'http://100.100.100.200/', // CGNAT: Alibaba Cloud's metadata service
  'http://0.0.0.0/pb',
  'http://[::1]/pb',
  'http://[::]/pb',
  'http://[fe80::1]/pb',
  'http://[fd00::1]/pb',
  'http://[::ffff:127.0.0.1]/pb',
  'http://[::ffff:169.254.169.254]/pb',
  'http://printer.local/pb',
];

describe('publishers: happy path', () => {
  it('creates a publisher, shows its whsec_ secret once and stores the 32 raw bytes', async () => {
    const res = await post(t.app, '/v1/publishers', { name: 'Pub One', postbackUrl: URL_OK, method: 'POST' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.id).toMatch(/^pub_[A-Za-z0-9_-]+$/);
    expect(body).toMatchObject({ name: 'Pub One', postbackUrl: URL_OK, method: 'POST', disabled: false });
    const key = decodeWebhookSecret(body.secret);

    const [row] = await t.sql`select name, postback_url, method, secret, disabled_at from publishers where id = ${body.id}`;
    expect(row?.name).toBe('Pub One');
    expect(row?.postback_url).toBe(URL_OK);
    expect(row?.method).toBe('POST');
    expect(row?.disabled_at).toBeNull();
    expect((row?.secret as Buffer).equals(key)).toBe(true);
    expect(t.engine.catalog.publishers.get(body.id)?.secret.equals(key)).toBe(true);
  });

  it('defaults the method to GET', async () => {
    const body = await createPublisher();
    expect(body.method).toBe('GET');
    const [row] = await t.sql`select method from publishers where id = ${body.id}`;
    expect(row?.method).toBe('GET');
  });

  it('GET on the item and the collection returns what was stored and never the secret', async () => {
    const created = await createPublisher({ name: 'Visible' });
    const keyBase64 = created.secret.slice('whsec_'.length);
    const item = await get(t.app, `/v1/publishers/${created.id}`);
    expect(item.statusCode).toBe(200);
    expect(item.json()).toEqual({
      id: created.id,
      name: 'Visible',
      postbackUrl: URL_OK,
      method: 'GET',
      onStatusChange: false,
      events: null,
      disabled: false,
      disabledAt: null,
      disabledReason: null,
      createdAt: created.createdAt,
      updatedAt: created.updatedAt,
    });
    const list = await get(t.app, '/v1/publishers');
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((p: { id: string }) => p.id)).toContain(created.id);
    for (const res of [item, list]) {
      expect(res.body).not.toContain(keyBase64);
      expect(res.body).not.toContain('whsec_');
    }
  });

  it('PATCH changes name, URL and method in the stored row; another node sees it within 5 s', async () => {
    const created = await createPublisher({ name: 'Old' });
    let other: SecondNode | undefined;
    try {
      other = await startSecondNode(t.url);
      const node = other;
      const res = await patch(t.app, `/v1/publishers/${created.id}`, { name: 'New', postbackUrl: 'https://new.example/pb?t={txid}', method: 'POST' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ id: created.id, name: 'New', postbackUrl: 'https://new.example/pb?t={txid}', method: 'POST' });
      expect(res.body).not.toContain('whsec_');
      const [row] = await t.sql`select name, postback_url, method, secret from publishers where id = ${created.id}`;
      expect(row).toMatchObject({ name: 'New', postback_url: 'https://new.example/pb?t={txid}', method: 'POST' });
      // Editing the endpoint keeps the signing secret the publisher already holds.
      expect((row?.secret as Buffer).equals(decodeWebhookSecret(created.secret))).toBe(true);
      const seen = await eventually(
        () => node.engine.catalog.publishers.get(created.id),
        (p) => p?.postbackUrl === 'https://new.example/pb?t={txid}',
      );
      expect(seen).toMatchObject({ name: 'New', method: 'POST' });
    } finally {
      await other?.close();
    }
  });

  it('accepts loopback and private destinations when ALLOW_PRIVATE_DESTINATIONS is on', async () => {
    const permissive = await startTestEngine({ allowPrivateDestinations: true });
    try {
      for (const postbackUrl of ['http://127.0.0.1:9999/pb', 'http://10.0.0.5/pb', 'http://[::1]/pb', 'http://localhost/pb']) {
        const res = await post(permissive.app, '/v1/publishers', { name: 'Local', postbackUrl });
        expect(res.statusCode, `${postbackUrl}: ${res.body}`).toBe(201);
      }
      const [row] = await permissive.sql<{ n: number }[]>`select count(*)::int as n from publishers`;
      expect(row?.n).toBe(4);
    } finally {
      await permissive.close();
    }
  });
});

describe('publishers: errors', () => {
  for (const postbackUrl of PRIVATE_URLS) {
    it(`refuses the private destination ${postbackUrl} on create and on PATCH, storing nothing`, async () => {
      const existing = await createPublisher();
      const before = await adminTablesSnapshot(t.sql);
      expectApiError(await post(t.app, '/v1/publishers', { name: 'Bad', postbackUrl }), 400, 'invalid_request', ['postbackUrl']);
      expectApiError(await patch(t.app, `/v1/publishers/${existing.id}`, { postbackUrl }), 400, 'invalid_request', ['postbackUrl']);
      expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    });
  }

  const invalid: Array<{ why: string; body: unknown; paths: string[] }> = [
    { why: 'missing fields', body: {}, paths: ['name', 'postbackUrl'] },
    { why: 'a javascript: URL', body: { name: 'x', postbackUrl: 'javascript:alert(1)' }, paths: ['postbackUrl'] },
    { why: 'an ftp: URL', body: { name: 'x', postbackUrl: 'ftp://pub.example/pb' }, paths: ['postbackUrl'] },
    { why: 'a file: URL', body: { name: 'x', postbackUrl: 'file:///etc/passwd' }, paths: ['postbackUrl'] },
    { why: 'a relative URL', body: { name: 'x', postbackUrl: '/pb?c={clickid}' }, paths: ['postbackUrl'] },
    { why: 'a URL with credentials', body: { name: 'x', postbackUrl: 'https://user:pw@pub.example/pb' }, paths: ['postbackUrl'] },
    { why: 'a URL with a space', body: { name: 'x', postbackUrl: 'https://pub.example/p b' }, paths: ['postbackUrl'] },
    { why: 'an unknown method', body: { name: 'x', postbackUrl: URL_OK, method: 'PUT' }, paths: ['method'] },
    { why: 'unknown fields, each reported', body: { name: 'x', postbackUrl: URL_OK, secret: 'whsec_mine', disabled: true }, paths: ['secret', 'disabled'] },
  ];
  for (const c of invalid) {
    it(`POST refuses ${c.why} with 400 naming the fields, storing nothing`, async () => {
      const before = await adminTablesSnapshot(t.sql);
      expectApiError(await post(t.app, '/v1/publishers', c.body), 400, 'invalid_request', c.paths);
      expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    });
  }

  it('PATCH refuses bad and unknown fields and leaves the row as it was', async () => {
    const created = await createPublisher({ name: 'Steady' });
    const before = await adminTablesSnapshot(t.sql);
    expectApiError(await patch(t.app, `/v1/publishers/${created.id}`, { name: '' }), 400, 'invalid_request', ['name']);
    expectApiError(await patch(t.app, `/v1/publishers/${created.id}`, { method: 'get' }), 400, 'invalid_request', ['method']);
    expectApiError(await patch(t.app, `/v1/publishers/${created.id}`, { secret: 'x', id: 'pub_2' }), 400, 'invalid_request', ['secret', 'id']);
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });

  it('unknown publisher IDs are 404 on GET and PATCH', async () => {
    expectApiError(await get(t.app, '/v1/publishers/pub_missing'), 404, 'not_found');
    expectApiError(await patch(t.app, '/v1/publishers/pub_missing', { name: 'x' }), 404, 'not_found');
  });
});

describe('publishers: security', () => {
  it('401 without a valid token on every publisher route; nothing is created', async () => {
    const created = await createPublisher();
    const before = await adminTablesSnapshot(t.sql);
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }]) {
      for (const route of [
        { method: 'GET', url: '/v1/publishers' },
        { method: 'GET', url: `/v1/publishers/${created.id}` },
        { method: 'POST', url: '/v1/publishers', payload: { name: 'x', postbackUrl: URL_OK } },
        { method: 'PATCH', url: `/v1/publishers/${created.id}`, payload: { name: 'x' } },
      ] as const) {
        expectApiError(await t.app.inject({ ...route, headers }), 401, 'unauthorized');
      }
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });

  it('403 for analyst and finance tokens on every publisher route', async () => {
    const created = await createPublisher();
    const tokens = [await createToken(t.app, 'analyst'), await createToken(t.app, 'finance')];
    const before = await adminTablesSnapshot(t.sql);
    for (const { token } of tokens) {
      for (const route of [
        { method: 'GET', url: '/v1/publishers' },
        { method: 'GET', url: `/v1/publishers/${created.id}` },
        { method: 'POST', url: '/v1/publishers', payload: { name: 'x', postbackUrl: URL_OK } },
        { method: 'PATCH', url: `/v1/publishers/${created.id}`, payload: { name: 'x' } },
      ] as const) {
        expectApiError(await t.app.inject({ ...route, headers: auth(token) }), 403, 'forbidden');
      }
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT } from '../src/http/body-parsers.js';
import { adminTablesSnapshot, expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * Transport-level bad input on every admin write route: each is refused in the contract's error shape
 * and leaves every admin table (and the catalog version other nodes poll) exactly as it was.
 * Field-level validation (CIDRs, URLs, money, destinations) is covered per route in admin-*.test.ts.
 */

let t: TestEngine;
type Route = { name: string; method: 'POST' | 'PATCH'; url: string; valid: Record<string, unknown> };
let routes: Route[];

beforeAll(async () => {
  t = await startTestEngine();
  const { advertiser, publisher, offer } = await seedCatalog(t.app);
  routes = [
    { name: 'POST /v1/advertisers', method: 'POST', url: '/v1/advertisers', valid: { name: 'A', auth: ['hmac'] } },
    { name: 'PATCH /v1/advertisers/:id', method: 'PATCH', url: `/v1/advertisers/${advertiser.id}`, valid: { name: 'A2' } },
    { name: 'POST /v1/publishers', method: 'POST', url: '/v1/publishers', valid: { name: 'P', postbackUrl: 'https://pub.example/pb' } },
    { name: 'PATCH /v1/publishers/:id', method: 'PATCH', url: `/v1/publishers/${publisher.id}`, valid: { name: 'P2' } },
    {
      name: 'POST /v1/offers',
      method: 'POST',
      url: '/v1/offers',
      valid: { advertiserId: advertiser.id, name: 'O', url: 'https://adv.example/?c={clickid}', payout: '1.00', currency: 'USD' },
    },
    { name: 'PATCH /v1/offers/:id', method: 'PATCH', url: `/v1/offers/${offer.id}`, valid: { payout: '3.00' } },
    { name: 'POST /v1/tokens', method: 'POST', url: '/v1/tokens', valid: { role: 'analyst', name: 'T' } },
  ];
});
afterAll(async () => {
  await t?.close();
});

const ROUTE_NAMES = [
  'POST /v1/advertisers',
  'PATCH /v1/advertisers/:id',
  'POST /v1/publishers',
  'PATCH /v1/publishers/:id',
  'POST /v1/offers',
  'PATCH /v1/offers/:id',
  'POST /v1/tokens',
];
const route = (name: string) => routes.find((r) => r.name === name) as Route;

async function send(r: Route, contentType: string, payload: string | Buffer) {
  return t.app.inject({ method: r.method, url: r.url, headers: { ...auth(), 'content-type': contentType }, payload });
}

/** Runs `act`, asserts its response, and proves no admin table moved. */
async function refusedWithoutChange(act: () => ReturnType<typeof send>, check: (res: Awaited<ReturnType<typeof send>>) => void) {
  const before = await adminTablesSnapshot(t.sql);
  check(await act());
  expect(await adminTablesSnapshot(t.sql)).toEqual(before);
}

describe.each(ROUTE_NAMES)('%s refuses bad input and changes nothing', (name) => {
  it('malformed JSON → 400 invalid_request', async () => {
    const r = route(name);
    for (const payload of ['{"name": "x",', '{name: "x"}', "{'name': 'x'}", '{"name": "x"} trailing', '\u0000']) {
      await refusedWithoutChange(() => send(r, 'application/json', payload), (res) => expectApiError(res, 400, 'invalid_request'));
    }
  });

  it('unknown fields → 400 with one detail per unknown field', async () => {
    const r = route(name);
    const payload = JSON.stringify({ ...r.valid, isAdmin: true, extra_field: 'x' });
    await refusedWithoutChange(
      () => send(r, 'application/json', payload),
      (res) => expectApiError(res, 400, 'invalid_request', ['isAdmin', 'extra_field']),
    );
  });

  it('a body that is not a JSON object → 400', async () => {
    const r = route(name);
    for (const payload of ['[]', '"text"', '42', 'true']) {
      await refusedWithoutChange(() => send(r, 'application/json', payload), (res) => expectApiError(res, 400, 'invalid_request'));
    }
  });

  it(`a body over 16 KiB → 413 payload_too_large`, async () => {
    const r = route(name);
    const payload = JSON.stringify({ ...r.valid, name: 'x'.repeat(BODY_LIMIT) });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(16 * 1024);
    await refusedWithoutChange(() => send(r, 'application/json', payload), (res) => expectApiError(res, 413, 'payload_too_large'));
  });

  it('a body just under 16 KiB is read (and refused on its merits, not its size)', async () => {
    const r = route(name);
    const base = JSON.stringify({ ...r.valid, name: '' });
    const payload = JSON.stringify({ ...r.valid, name: 'x'.repeat(16 * 1024 - Buffer.byteLength(base)) });
    expect(Buffer.byteLength(payload)).toBe(16 * 1024);
    await refusedWithoutChange(() => send(r, 'application/json', payload), (res) => expectApiError(res, 400, 'invalid_request', ['name']));
  });

  it('an unsupported content type → 415 unsupported_media_type', async () => {
    const r = route(name);
    const json = JSON.stringify(r.valid);
    const form = new URLSearchParams(Object.entries(r.valid).map(([k, v]) => [k, String(v)])).toString();
    const cases: Array<[string, string]> = [
      ['text/plain', json],
      ['application/xml', '<x/>'],
      ['text/csv', 'role,name\nadmin,x'],
      ['application/x-www-form-urlencoded', form],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--x--'],
      ['application/jsonp', json],
    ];
    for (const [type, payload] of cases) {
      await refusedWithoutChange(() => send(r, type, payload), (res) => expectApiError(res, 415, 'unsupported_media_type'));
    }
  });

  it('the same route with a valid JSON body does change the tables (the checks above can fail)', async () => {
    const r = route(name);
    const before = await adminTablesSnapshot(t.sql);
    const res = await send(r, 'application/json; charset=utf-8', JSON.stringify(r.valid));
    expect(res.statusCode, res.body).toBe(r.method === 'POST' ? 201 : 200);
    expect(await adminTablesSnapshot(t.sql)).not.toEqual(before);
  });
});

describe('unauthenticated bad input', () => {
  it('is refused as 401 whatever the body, so an anonymous caller learns nothing about validation', async () => {
    for (const r of routes) {
      for (const [type, payload] of [
        ['application/json', '{"broken'],
        ['application/json', JSON.stringify({ ...r.valid, name: 'x'.repeat(BODY_LIMIT) })],
        ['text/plain', 'hello'],
        ['application/json', JSON.stringify({ nope: true })],
      ] as const) {
        const before = await adminTablesSnapshot(t.sql);
        const res = await t.app.inject({ method: r.method, url: r.url, headers: { 'content-type': type }, payload });
        expectApiError(res, 401, 'unauthorized');
        expect(await adminTablesSnapshot(t.sql)).toEqual(before);
      }
    }
  });
});

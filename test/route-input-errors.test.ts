import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { rowCounter } from './helpers/fuzz.js';

/**
 * Paths the router cannot decode and IDs PostgreSQL cannot hold, found by the route fuzzing campaign
 * (fuzz-*.test.ts): each was a 500 or a body in fastify's own shape; each is a contract-shaped refusal
 * that writes nothing.
 */

let t: TestEngine;
let counts: Awaited<ReturnType<typeof rowCounter>>;
let publisherId: string;

beforeAll(async () => {
  t = await startTestEngine();
  publisherId = (await seedCatalog(t.app)).publisher.id;
  counts = await rowCounter(t.sql);
});
afterAll(async () => t?.close());

describe('a path the router cannot decode', () => {
  it.each(['/c/%', '/postback/%zz', '/v1/advertisers/%E2%82', '/v1/tokens/%'])('GET %s is a 400 invalid_request', async (url) => {
    const before = await counts();
    const res = await t.app.inject({ method: url.startsWith('/v1/tokens') ? 'DELETE' : 'GET', url, headers: auth() });
    expectApiError(res, 400, 'invalid_request');
    expect(await counts()).toEqual(before);
  });

  it('a path segment over 200 characters is a 414 uri_too_long', async () => {
    const before = await counts();
    const res = await t.app.inject({ method: 'GET', url: `/v1/offers/${'x'.repeat(201)}`, headers: auth() });
    expectApiError(res, 414, 'uri_too_long');
    expect(await counts()).toEqual(before);
  });
});

describe('an ID holding a NUL character', () => {
  it.each([
    ['DELETE', '/v1/tokens/%00'],
    ['GET', '/v1/conversions/a%00b'],
    ['GET', '/v1/reconciliations/%00'],
    ['GET', '/v1/reconciliations/%00/root-causes'],
    ['GET', '/v1/deliveries/%00'],
    ['POST', '/v1/deliveries/%00/replay'],
    ['POST', '/v1/publishers/%00/enable'],
  ] as const)('%s %s is a 400 invalid_request and writes nothing', async (method, url) => {
    const before = await counts();
    const res = await t.app.inject({ method, url, headers: auth() });
    expectApiError(res, 400, 'invalid_request');
    expect(await counts()).toEqual(before);
  });

  it('the same routes still find what exists', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/publishers/${publisherId}/enable`, headers: auth() });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().id).toBe(publisherId);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptedRequestId, traceIdOf } from '../src/http/request-id.js';
import { countRows, expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t?.close();
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('request IDs', () => {
  it('keep a valid X-Request-Id, in the header and in the error body', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/nothing-here', headers: { 'x-request-id': 'lb-7f3a.91:zz/AB+c=d@e_f' } });
    expectApiError(res, 404, 'not_found');
    expect(res.headers['x-request-id']).toBe('lb-7f3a.91:zz/AB+c=d@e_f');
    expect(res.json().error.requestId).toBe('lb-7f3a.91:zz/AB+c=d@e_f');
  });

  it('take the trace-id of a W3C traceparent when there is no usable X-Request-Id', async () => {
    const viaTrace = await t.app.inject({ method: 'GET', url: '/healthz', headers: { traceparent: TRACEPARENT } });
    expect(viaTrace.statusCode).toBe(200);
    expect(viaTrace.headers['x-request-id']).toBe(TRACE_ID);
    const badIdGoodTrace = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'has space', traceparent: TRACEPARENT } });
    expect(badIdGoodTrace.headers['x-request-id']).toBe(TRACE_ID);
    // Both valid: the request's own ID names this request; the trace ID may span many.
    const both = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'mine-1', traceparent: TRACEPARENT } });
    expect(both.headers['x-request-id']).toBe('mine-1');
  });

  it('are generated, unique, for missing, over-long, unsafe or malformed input', async () => {
    const hostile = [
      {},
      { 'x-request-id': 'a'.repeat(129) },
      { 'x-request-id': '' },
      { 'x-request-id': 'quote"inside' },
      { 'x-request-id': 'new\u2028line' },
      { 'x-request-id': '<script>' },
      { traceparent: `ff-${TRACE_ID}-00f067aa0ba902b7-01` },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` },
      { traceparent: `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01` },
      { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01-extra` },
      { traceparent: 'garbage' },
    ];
    const ids = new Set<string>();
    for (const headers of hostile) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/nothing-here', headers });
      const id = res.headers['x-request-id'] as string;
      expect(id, JSON.stringify(headers)).toMatch(/^[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$/);
      expect(res.json().error.requestId).toBe(id);
      ids.add(id);
    }
    expect(ids.size).toBe(hostile.length);
    expect(acceptedRequestId({ 'x-request-id': 'a'.repeat(128) })).toBe('a'.repeat(128));
  });

  it('follow the traceparent rules: later versions may carry more fields, version 00 may not', () => {
    expect(traceIdOf(TRACEPARENT)).toBe(TRACE_ID);
    expect(traceIdOf(`01-${TRACE_ID}-00f067aa0ba902b7-01-future-field`)).toBe(TRACE_ID);
    expect(traceIdOf(`00-${TRACE_ID}-00f067aa0ba902b7-01-future-field`)).toBeUndefined();
    expect(traceIdOf(`00-${TRACE_ID}-00f067aa0ba902b7`)).toBeUndefined();
  });

  it('are in a validation error body beside the details, and the refused request changes nothing', async () => {
    const before = await countRows(t.sql, 'advertisers');
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/advertisers',
      headers: { ...auth(), 'x-request-id': 'support-ticket-42' },
      payload: { name: '', auth: ['carrier-pigeon'] },
    });
    expectApiError(res, 400, 'invalid_request');
    const body = res.json();
    expect(body.error.requestId).toBe('support-ticket-42');
    expect(Array.isArray(body.error.details)).toBe(true);
    expect(await countRows(t.sql, 'advertisers')).toBe(before);
  });

  it('are on a click redirect too', async () => {
    const { offer, publisher } = await seedCatalog(t.app);
    const res = await t.app.inject({ method: 'GET', url: `/c/${offer.id}?pub=${publisher.id}`, headers: { traceparent: TRACEPARENT } });
    expect(res.statusCode).toBe(302);
    expect(res.headers['x-request-id']).toBe(TRACE_ID);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { metricsGate, startMetricsListener, type MetricsListener } from '../src/ops/metrics-access.js';
import { expectApiError } from './helpers/admin.js';
import { freePort } from '../src/net/free-port.js';
import { freshDatabase } from './helpers/db.js';
import { ADMIN, startTestEngine, type TestEngine } from './helpers/engine.js';
import { spawnEngine } from './helpers/process.js';

const METRICS_TOKEN = 'metrics-scraper-token-0123';
const engines: TestEngine[] = [];
const listeners: MetricsListener[] = [];
afterAll(async () => {
  for (const l of listeners) await l.close();
  for (const e of engines) await e.close();
});

async function engineWith(overrides: Parameters<typeof startTestEngine>[0]): Promise<TestEngine> {
  const t = await startTestEngine(overrides);
  engines.push(t);
  return t;
}

describe('/metrics access', () => {
  it('is open on the main port when neither METRICS_TOKEN nor METRICS_PORT is set (CONTRACT §9)', async () => {
    const t = await engineWith({});
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^# TYPE postback_engine_http_requests_total counter$/m);
  });

  it('with METRICS_TOKEN needs that bearer token: none or a wrong one is 401 in the contract shape, and nothing is exposed', async () => {
    const t = await engineWith({ metricsToken: METRICS_TOKEN });
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Bearer ${METRICS_TOKEN}x`, `Basic ${METRICS_TOKEN}`, METRICS_TOKEN, 'Bearer ']) {
      const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: authorization === undefined ? {} : { authorization } });
      expectApiError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expect(res.body).not.toContain('postback_engine_');
    }
    const ok = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toMatch(/^postback_engine_http_requests_total\{route="\/metrics",method="GET",status="401"\} 6$/m);
    // The other operations routes stay open: probes carry no token.
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('with METRICS_PORT is served on its own listener only, token and all, and the main port no longer has it', async () => {
    const t = await engineWith({ metricsPort: 0, metricsToken: METRICS_TOKEN });
    expectApiError(await t.app.inject({ method: 'GET', url: '/metrics' }), 404, 'not_found');

    const listener = await startMetricsListener(t.engine, 0, '127.0.0.1');
    listeners.push(listener);
    const refused = await fetch(`${listener.url}/metrics`, { headers: { 'x-request-id': 'scrape-1' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toBe('scrape-1');
    expect(await refused.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String), requestId: 'scrape-1' } });

    await t.app.inject({ method: 'GET', url: '/healthz' });
    const scraped = await fetch(`${listener.url}/metrics?ignored=1`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await scraped.text()).toMatch(/^postback_engine_http_requests_total\{route="\/healthz",method="GET",status="200"\} 1$/m);

    const other = await fetch(`${listener.url}/v1/advertisers`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(other.status).toBe(404);
    expect((await other.json()).error.code).toBe('not_found');
    const post = await fetch(`${listener.url}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('the engine process opens the METRICS_PORT listener on METRICS_HOST and closes it on SIGTERM', { timeout: 90_000 }, async () => {
    const db = await freshDatabase();
    const metricsPort = await freePort();
    const proc = await spawnEngine({ DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1', METRICS_TOKEN });
    try {
      await proc.ready();
      expect((await fetch(`${proc.url}/metrics`)).status).toBe(404);
      const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/^postback_engine_http_requests_total\{route="\/readyz",method="GET",status="200"\} [1-9]\d*$/m);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
      proc.child.kill('SIGTERM');
      expect(await proc.exited, proc.output()).toEqual({ code: 0, signal: null });
      await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
    } finally {
      proc.kill();
      await db.drop();
    }
  });

  it('compares the token exactly: same length, one character off, case, padding', () => {
    const allowed = metricsGate(METRICS_TOKEN);
    expect(allowed(`Bearer ${METRICS_TOKEN}`)).toBe(true);
    expect(allowed(`bearer ${METRICS_TOKEN}`)).toBe(true);
    expect(allowed(`Bearer ${METRICS_TOKEN.slice(0, -1)}4`)).toBe(false);
    expect(allowed(`Bearer ${METRICS_TOKEN.toUpperCase()}`)).toBe(false);
    expect(allowed(`Bearer ${METRICS_TOKEN} `)).toBe(false);
    expect(allowed(undefined)).toBe(false);
    expect(metricsGate(undefined)(undefined)).toBe(true);
  });
});

import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { testConfig } from '../src/config.js';
import { createEngine } from '../src/engine.js';
import { redactUrl } from '../src/http/access-log.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { ADMIN, seedCatalog } from './helpers/engine.js';
import { signedGetUrl } from './helpers/postback.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** An engine whose log lines land in `lines`; LOG_LEVEL warn, as in production, to show the access log ignores it. */
async function engineLogging(accessLog: boolean) {
  const db: TestDatabase = await freshDatabase();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const config = testConfig({ adminToken: ADMIN, databaseUrl: db.url, accessLog, logLevel: 'warn', trustProxy: [] });
  const engine = await createEngine(config, db.sql, log);
  const app = await buildApp(engine);
  await app.ready();
  cleanups.push(async () => {
    await app.close();
    await engine.close();
    await db.drop();
  });
  return { app, lines: () => lines.filter((l) => l.log === 'access') };
}

describe('ACCESS_LOG', () => {
  it('off by default: no line per request', async () => {
    expect(testConfig().accessLog).toBe(false);
    const { app, lines } = await engineLogging(false);
    await app.inject({ method: 'GET', url: '/healthz' });
    await app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(lines()).toEqual([]);
  });

  it('on: one JSON line per request with method, route, status, duration, request ID and source address, secrets redacted', async () => {
    const { app, lines } = await engineLogging(true);
    const { advertiser, offer, publisher } = await seedCatalog(app);
    const seeded = lines().length;
    expect(seeded).toBe(3);

    const click = await app.inject({ method: 'GET', url: `/c/${offer.id}?pub=${publisher.id}&sub1=a`, remoteAddress: '198.51.100.7', headers: { 'x-request-id': 'req-click-1' } });
    expect(click.statusCode).toBe(302);
    const cid = /[?&]cid=([A-Za-z0-9_-]+)/.exec(click.headers.location as string)?.[1];
    const signed = signedGetUrl(advertiser.id, `clickid=${cid}&txid=tx-1`, advertiser.secrets[0].secret);
    const postback = await app.inject({ method: 'GET', url: signed, remoteAddress: '203.0.113.9' });
    expect(postback.statusCode).toBe(200);
    const refused = await app.inject({ method: 'GET', url: `/postback/${advertiser.id}?clickid=${cid}&txid=tx-2&ts=1&sig=deadbeefcafe&token=eyJhbGciOi.secret.jwt`, remoteAddress: '203.0.113.9' });
    expect(refused.statusCode).toBe(401);

    const logged = lines().slice(seeded);
    expect(logged).toHaveLength(3);
    expect(logged[0]).toMatchObject({
      msg: 'request',
      level: 30,
      requestId: 'req-click-1',
      method: 'GET',
      route: '/c/:offerId',
      url: `/c/${offer.id}?pub=${publisher.id}&sub1=a`,
      status: 302,
      sourceAddress: '198.51.100.7',
    });
    expect(typeof logged[0]?.durationMs).toBe('number');
    expect(logged[1]).toMatchObject({ route: '/postback/:advertiserId', status: 200, sourceAddress: '203.0.113.9', requestId: postback.headers['x-request-id'] });
    expect(logged[2]).toMatchObject({ status: 401, requestId: refused.headers['x-request-id'] });
    const sig = new URL(signed, 'http://x').searchParams.get('sig') as string;
    expect(sig.length).toBeGreaterThan(10);
    const text = JSON.stringify(logged);
    for (const secret of [sig, 'deadbeefcafe', 'eyJhbGciOi.secret.jwt', advertiser.secrets[0].secret]) expect(text).not.toContain(secret);
    expect(logged[2]?.url).toBe(`/postback/${advertiser.id}?clickid=${cid}&txid=tx-2&ts=1&sig=[redacted]&token=[redacted]`);
  });

  it('redacts by key, percent-encoded keys included, and leaves everything else as sent', () => {
    expect(redactUrl('/c/o?pub=p&sub1=x')).toBe('/c/o?pub=p&sub1=x');
    expect(redactUrl('/p?Signature=a&api_key=b&%73ig=c&jwt=d&secret=e&x=1&flag')).toBe('/p?Signature=[redacted]&api_key=[redacted]&%73ig=[redacted]&jwt=[redacted]&secret=[redacted]&x=1&flag');
    expect(redactUrl('/p?%zz=1&sig')).toBe('/p?%zz=1&sig');
    expect(redactUrl('/healthz')).toBe('/healthz');
  });
});

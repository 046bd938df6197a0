import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDatabase } from './helpers/db.js';
import { ADMIN } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function startProcess(env: Record<string, string>): Promise<EngineProcess> {
  const proc = await spawnEngine(env);
  cleanups.push(() => proc.kill());
  await proc.ready();
  return proc;
}

async function api(proc: EngineProcess, token: string, method: string, path: string, body?: object) {
  const res = await fetch(`${proc.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** One click through the real socket; the click ID if it was redirected, undefined if refused or cut off. */
async function clickOnce(proc: EngineProcess, offerId: string, publisherId: string, i: number): Promise<string | undefined> {
  try {
    const res = await fetch(`${proc.url}/c/${offerId}?pub=${publisherId}&sub1=n${i}`, { redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status !== 302) return undefined;
    return /[?&]cid=([A-Za-z0-9_-]+)/.exec(res.headers.get('location') ?? '')?.[1];
  } catch {
    return undefined; // the server had stopped accepting: this click was never redirected
  }
}

describe('the engine process', () => {
  it('on SIGTERM finishes what it accepted, flushes every redirected click to PostgreSQL and exits 0', { timeout: 90_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const proc = await startProcess({ DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN });

    const advertiser = await api(proc, ADMIN, 'POST', '/v1/advertisers', { name: 'Acme', auth: ['hmac'] });
    expect(advertiser.status).toBe(201);
    const publisher = await api(proc, ADMIN, 'POST', '/v1/publishers', { name: 'Pub', postbackUrl: 'https://pub.example/pb' });
    expect(publisher.status).toBe(201);
    const offer = await api(proc, ADMIN, 'POST', '/v1/offers', {
      advertiserId: advertiser.body.id,
      name: 'Offer',
      url: 'https://adv.example/lp?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
    });
    expect(offer.status).toBe(201);

    const before = await Promise.all(Array.from({ length: 40 }, (_, i) => clickOnce(proc, offer.body.id, publisher.body.id, i)));
    expect(before.every((id) => id !== undefined)).toBe(true);
    // A second burst still in flight when the signal lands: whichever of these got a redirect must be kept too.
    const inFlight = Array.from({ length: 40 }, (_, i) => clickOnce(proc, offer.body.id, publisher.body.id, 100 + i));
    proc.child.kill('SIGTERM');
    const during = await Promise.all(inFlight);

    const exit = await proc.exited;
    expect(exit, proc.output()).toEqual({ code: 0, signal: null });
    expect(proc.output()).not.toMatch(/drain took too long|error while draining/);

    const redirected = [...before, ...during].filter((id): id is string => id !== undefined);
    expect(new Set(redirected).size).toBe(redirected.length);
    const rows = await db.sql<{ id: string; sub1: string }[]>`select id, sub1 from clicks where id in ${db.sql(redirected)}`;
    expect(rows.length).toBe(redirected.length);
    expect(rows.filter((r) => /^n\d{1,2}$/.test(r.sub1))).toHaveLength(40);
  });

  it('with SHUTDOWN_DELAY_S, /readyz answers 503 after SIGTERM while other requests are still served, then it drains and exits 0', { timeout: 90_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const proc = await startProcess({ DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, SHUTDOWN_DELAY_S: '5' });
    let exited = false;
    void proc.exited.then(() => (exited = true));
    const advertiser = await api(proc, ADMIN, 'POST', '/v1/advertisers', { name: 'Acme', auth: ['hmac'] });
    const publisher = await api(proc, ADMIN, 'POST', '/v1/publishers', { name: 'Pub', postbackUrl: 'https://pub.example/pb' });
    const offer = await api(proc, ADMIN, 'POST', '/v1/offers', {
      advertiserId: advertiser.body.id,
      name: 'Offer',
      url: 'https://adv.example/lp?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
    });
    expect(offer.status).toBe(201);
    expect((await fetch(`${proc.url}/readyz`)).status).toBe(200);

    proc.child.kill('SIGTERM');
    let readyz: Response | undefined;
    for (let i = 0; i < 50; i++) {
      readyz = await fetch(`${proc.url}/readyz`);
      if (readyz.status === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(readyz?.status, proc.output()).toBe(503);
    expect(await readyz?.json()).toEqual({ error: { code: 'unavailable', message: 'The engine is shutting down.', requestId: readyz?.headers.get('x-request-id') } });

    // Still serving: a click, an admin read and the liveness probe, while the process has not exited.
    const clicked = await clickOnce(proc, offer.body.id, publisher.body.id, 7);
    expect(clicked).toBeDefined();
    expect((await api(proc, ADMIN, 'GET', '/v1/advertisers')).status).toBe(200);
    expect((await fetch(`${proc.url}/healthz`)).status).toBe(200);
    expect(exited).toBe(false);
    const metrics = await (await fetch(`${proc.url}/metrics`)).text();
    expect(metrics).toMatch(/^postback_engine_http_unavailable_total\{route="\/readyz",reason="shutting_down"\} [1-9]\d*$/m);

    expect(await proc.exited, proc.output()).toEqual({ code: 0, signal: null });
    expect(proc.output()).not.toMatch(/drain took too long|error while draining/);
    await expect(fetch(`${proc.url}/healthz`)).rejects.toThrow();
    const rows = await db.sql<{ id: string }[]>`select id from clicks where id = ${clicked as string}`;
    expect(rows).toHaveLength(1);
  });

  it('a second SIGTERM during the shutdown delay skips the rest of it and drains at once', { timeout: 90_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    // Ten minutes: longer than this test may run, so only the second signal can end it in time.
    const proc = await startProcess({ DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, SHUTDOWN_DELAY_S: '600' });
    proc.child.kill('SIGTERM');
    let status = 0;
    for (let i = 0; i < 50 && status !== 503; i++) {
      status = (await fetch(`${proc.url}/readyz`)).status;
      if (status !== 503) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status, proc.output()).toBe(503);
    proc.child.kill('SIGTERM');
    expect(await proc.exited, proc.output()).toEqual({ code: 0, signal: null });
  });

  it('without ADMIN_TOKEN prints a generated admin token once per database, and that token works across restarts', { timeout: 120_000 }, async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const env = { DATABASE_URL: db.url };

    const first = await startProcess(env);
    const printed = [...first.output().matchAll(/Generated admin token[^\n]*\n\s*(\S+)/g)].map((m) => m[1] as string);
    expect(printed, first.output()).toHaveLength(1);
    const token = printed[0] as string;
    // Shown exactly once: not echoed again by the structured log.
    expect(first.output().split(token)).toHaveLength(2);

    expect((await api(first, token, 'GET', '/v1/tokens')).status).toBe(200);
    expect((await api(first, token, 'POST', '/v1/advertisers', { name: 'First run', auth: ['hmac'] })).status).toBe(201);
    expect((await api(first, `${token}x`, 'GET', '/v1/tokens')).status).toBe(401);
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });

    const rows = await db.sql`select role, token_hash from api_tokens`;
    expect(rows).toHaveLength(1);
    expect(rows[0]?.role).toBe('admin');
    expect((rows[0]?.token_hash as Buffer).equals(createHash('sha256').update(token).digest())).toBe(true);

    const second = await startProcess(env);
    expect(second.output()).not.toMatch(/Generated admin token/);
    expect(second.output()).not.toContain(token);
    const listed = await api(second, token, 'GET', '/v1/advertisers');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((a: { name: string }) => a.name)).toEqual(['First run']);
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect([...(await db.sql`select count(*)::int as n from api_tokens`)]).toEqual([{ n: 1 }]);
  });
});

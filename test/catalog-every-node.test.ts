import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { ADMIN, auth, seedCatalog, startTestEngine, TEST_TRAFFIC_FRAUD, type TestEngine } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';
import { countRows, eventually, startSecondNode, type SecondNode } from './helpers/admin.js';

/**
 * CONTRACT §2: an object is served by every node as soon as the call that created it has returned.
 * Senders do not retry a 404, so a node that has not heard of a new offer yet must look before it
 * answers one.
 */

const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

async function api(node: EngineProcess, method: string, path: string, body?: object, token = ADMIN) {
  return fetch(`${node.url}${path}`, {
    method,
    headers: { ...headers, authorization: `Bearer ${token}` },
    body: body ? JSON.stringify(body) : undefined,
  });
}

async function created<T = Record<string, any>>(res: Response): Promise<T> {
  if (res.status !== 201) throw new Error(`${res.url} -> ${res.status} ${await res.text()}`);
  return res.json() as Promise<T>;
}

describe('two engine processes on one database', () => {
  let db: TestDatabase;
  let a: EngineProcess;
  let b: EngineProcess;

  beforeAll(async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, ADDRESS_RATE_LIMIT_PER_S: '10000' };
    [a, b] = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    await Promise.all([a.ready(), b.ready()]);
  }, 60_000);

  afterAll(async () => {
    a?.kill();
    b?.kill();
    await db?.drop();
  });

  it('creates on one node, clicks and posts back on the other at once: 100 rounds, never a 404', async () => {
    const conversionIds = new Set<string>();
    for (let round = 0; round < 100; round++) {
      const adv = await created<{ id: string; secrets: { secret: string }[] }>(
        await api(a, 'POST', '/v1/advertisers', { name: `A${round}`, ipAllowlist: [], auth: ['hmac'] }),
      );
      const pub = await created<{ id: string }>(await api(a, 'POST', '/v1/publishers', { name: `P${round}`, postbackUrl: 'https://pub.example/pb?c={clickid}' }));
      const offer = await created<{ id: string }>(
        await api(a, 'POST', '/v1/offers', { advertiserId: adv.id, name: 'O', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD', fraud: TEST_TRAFFIC_FRAUD }),
      );
      // Round by round the other node serves the item routes, the click and the postback first.
      const [seenOffer, seenAdvertiser] = await Promise.all([api(b, 'GET', `/v1/offers/${offer.id}`), api(b, 'GET', `/v1/advertisers/${adv.id}`)]);
      expect([seenOffer.status, seenAdvertiser.status], `round ${round}`).toEqual([200, 200]);
      const click = await fetch(`${b.url}/c/${offer.id}?pub=${pub.id}`, { redirect: 'manual' });
      expect(click.status, `round ${round}: ${await click.clone().text()}`).toBe(302);
      const clickId = new URL(click.headers.get('location') as string).searchParams.get('cid') as string;
      const secret = adv.secrets[0]?.secret as string;
      const res = await fetch(`${b.url}${signedGetUrl(adv.id, `clickid=${clickId}&txid=${uniqueTx()}`, secret)}`);
      const body = (await res.json()) as { conversionId: string; decision: string };
      expect(res.status, `round ${round}: ${JSON.stringify(body)}`).toBe(200);
      expect(body.decision).toBe('accepted');
      conversionIds.add(body.conversionId);
    }
    expect(conversionIds.size).toBe(100);
    expect(await countRows(db.sql, 'conversions')).toBe(100);
    const [offers] = await db.sql<{ n: number }[]>`select count(distinct offer_id)::int as n from conversions`;
    expect(offers?.n).toBe(100);
  }, 120_000);

  it('honours a token created on one node at once on the other, and stops a revoked one at once', async () => {
    for (let round = 0; round < 10; round++) {
      const token = await created<{ id: string; token: string }>(await api(a, 'POST', '/v1/tokens', { role: 'analyst', name: `t${round}` }));
      expect((await api(b, 'GET', '/v1/conversions?limit=1', undefined, token.token)).status).toBe(200);
      expect((await api(b, 'GET', '/v1/offers', undefined, token.token)).status).toBe(403);
      expect((await api(a, 'DELETE', `/v1/tokens/${token.id}`)).status).toBeLessThan(300);
      expect((await api(b, 'GET', '/v1/conversions?limit=1', undefined, token.token)).status).toBe(401);
    }
  }, 60_000);
});

describe('a node that has heard nothing still finds what the database has', () => {
  let t: TestEngine;
  let deaf: SecondNode;

  beforeAll(async () => {
    t = await startTestEngine();
    deaf = await startSecondNode(t.url);
    // Neither NOTIFY nor the poll reaches this node: only the miss check can find new objects.
    deaf.engine.catalog.stopPolling();
    await deaf.engine.catalog.stopListening();
  });

  afterAll(async () => {
    await deaf?.close();
    await t?.close();
  });

  it('finds a new advertiser, offer and publisher on a miss, for clicks, postbacks, pixels and admin reads', async () => {
    const seeded = await seedCatalog(t.app);
    expect(deaf.engine.catalog.offers.has(seeded.offer.id)).toBe(false);
    const clickId = await mintClick(deaf.app, seeded.offer.id, seeded.publisher.id);
    const res = await deaf.app.inject({
      method: 'GET',
      url: signedGetUrl(seeded.advertiser.id, `clickid=${clickId}&txid=${uniqueTx()}`, seeded.advertiser.secrets[0].secret),
      remoteAddress: '203.0.113.9',
    });
    expect(res.statusCode, res.body).toBe(200);
    const [row] = await t.sql<{ offer_id: string; publisher_id: string }[]>`select offer_id, publisher_id from conversions where id = ${res.json().conversionId}`;
    expect(row).toEqual({ offer_id: seeded.offer.id, publisher_id: seeded.publisher.id });
    expect((await deaf.app.inject({ method: 'GET', url: `/v1/publishers/${seeded.publisher.id}`, headers: auth() })).statusCode).toBe(200);

    // A click minted by the first node for an offer created after the deaf node's last reload.
    const later = await seedCatalog(t.app);
    const laterClick = await mintClick(t.app, later.offer.id, later.publisher.id);
    const pixelTx = uniqueTx();
    const pixel = await deaf.app.inject({ method: 'GET', url: `/pixel.gif?clickid=${laterClick}&txid=${pixelTx}` });
    expect(pixel.statusCode).toBe(200);
    await deaf.engine.pixelWriter.flush();
    const pixels = await t.sql`select click_id from pixel_events where txid = ${pixelTx}`;
    expect(pixels.map((p) => p.click_id)).toEqual([laterClick]);
  });

  it('answers a flood of unknown IDs with a handful of catalog reads, and a repeated one from memory', async () => {
    // Each read is one query of the catalog version (and a reload when it moved).
    const reads = vi.spyOn(deaf.engine.catalog as unknown as { reloadIfChanged: () => Promise<void> }, 'reloadIfChanged');
    const same = await Promise.all(Array.from({ length: 200 }, () => deaf.app.inject({ method: 'GET', url: '/c/off_doesnotexist?pub=pub_x' })));
    expect(new Set(same.map((r) => r.statusCode))).toEqual(new Set([404]));
    expect(reads.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(reads.mock.calls.length).toBeLessThanOrEqual(2);
    const afterSame = reads.mock.calls.length;
    await deaf.app.inject({ method: 'GET', url: '/c/off_doesnotexist?pub=pub_x' });
    expect(reads.mock.calls.length).toBe(afterSame);

    const distinct = await Promise.all(
      Array.from({ length: 200 }, (_, i) => deaf.app.inject({ method: 'GET', url: `/postback/adv_unknown_${i}?clickid=x&txid=y`, remoteAddress: '203.0.113.10' })),
    );
    expect(new Set(distinct.map((r) => r.json().error.code))).toEqual(new Set(['unknown_advertiser']));
    expect(reads.mock.calls.length - afterSame).toBeLessThanOrEqual(2);
    reads.mockRestore();
  });
});

describe('catalog writes notify every node', () => {
  it('reaches a node that does not poll, without any request asking for it', async () => {
    const t = await startTestEngine();
    const listener = await startSecondNode(t.url);
    try {
      listener.engine.catalog.stopPolling();
      const seeded = await seedCatalog(t.app);
      await eventually(() => listener.engine.catalog.offers.has(seeded.offer.id), (known) => known);
      const renamed = await t.app.inject({ method: 'PATCH', url: `/v1/offers/${seeded.offer.id}`, headers: auth(), payload: { name: 'Renamed' } });
      expect(renamed.statusCode, renamed.body).toBe(200);
      await eventually(() => listener.engine.catalog.offers.get(seeded.offer.id)?.name, (name) => name === 'Renamed');
    } finally {
      await listener.close();
      await t.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecondNode, type SecondNode } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * A PATCH changes the fields it names and nothing else (CONTRACT §2), whichever node takes it and
 * however many arrive at once: each is merged into the row as committed, under its lock, not into the
 * copy of the catalog the node last polled. Otherwise a PATCH of the allowlist on one node, right
 * after a rename on another, would put the old name back.
 */

let a: TestEngine;
let b: SecondNode;
let seeded: Awaited<ReturnType<typeof seedCatalog>>;

beforeAll(async () => {
  a = await startTestEngine();
  b = await startSecondNode(a.url);
  seeded = await seedCatalog(a.app);
}, 60_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
});

type Node = { app: TestEngine['app'] };

async function patch(node: Node, url: string, payload: object) {
  const res = await node.app.inject({ method: 'PATCH', url, headers: auth(), payload });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function updatesOf(entity: string, entityId: string) {
  const rows = await a.sql<{ before: Record<string, unknown>; after: Record<string, unknown> }[]>`
    select before, after from admin_audit where entity = ${entity} and entity_id = ${entityId} and action = 'update' order by at, id`;
  return rows;
}

/** Each change's `before` is the previous change's `after`: no change was made from a stale copy. */
function expectUnbrokenChain(updates: { before: Record<string, unknown>; after: Record<string, unknown> }[]) {
  for (let i = 1; i < updates.length; i++) expect(updates[i]?.before).toEqual(updates[i - 1]?.after);
}

describe('PATCH merges into the committed row', () => {
  it('advertiser: five PATCHes of different fields at once on two nodes all take effect', async () => {
    const url = `/v1/advertisers/${seeded.advertiser.id}`;
    await Promise.all([
      patch(a, url, { name: 'Acme Renamed' }),
      patch(b, url, { ipAllowlist: ['203.0.113.0/24'] }),
      patch(a, url, { rateLimit: { perS: 77 } }),
      patch(b, url, { auth: ['hmac'] }),
      patch(a, url, { ipAllowlist: ['203.0.113.0/24', '2001:db8::/32'] }),
    ]);
    const [row] = await a.sql`select name, ip_allowlist, rate_limit_per_s from advertisers where id = ${seeded.advertiser.id}`;
    expect(row?.name).toBe('Acme Renamed');
    expect(row?.rate_limit_per_s).toBe(77);
    // The two allowlist changes are ordered by their locks; whichever committed last stands.
    expect([['203.0.113.0/24'], ['203.0.113.0/24', '2001:db8::/32']]).toContainEqual(row?.ip_allowlist);
    const updates = await updatesOf('advertiser', seeded.advertiser.id);
    expect(updates).toHaveLength(5);
    expectUnbrokenChain(updates);
    for (const node of [a, b]) {
      const view = (await node.app.inject({ url, headers: auth() })).json();
      expect(view).toMatchObject({ name: 'Acme Renamed', rateLimit: { perS: 77 }, ipAllowlist: row?.ip_allowlist });
    }
  });

  it('publisher: a rename on one node and a new postback URL on the other both stand', async () => {
    const url = `/v1/publishers/${seeded.publisher.id}`;
    await Promise.all([
      patch(a, url, { name: 'Pub Renamed' }),
      patch(b, url, { postbackUrl: 'https://pub.example/v2?c={clickid}&s={status}' }),
      patch(a, url, { onStatusChange: true }),
    ]);
    const [row] = await a.sql`select name, postback_url, on_status_change from publishers where id = ${seeded.publisher.id}`;
    expect(row).toEqual({ name: 'Pub Renamed', postback_url: 'https://pub.example/v2?c={clickid}&s={status}', on_status_change: true });
    const updates = await updatesOf('publisher', seeded.publisher.id);
    expect(updates).toHaveLength(3);
    expectUnbrokenChain(updates);
  });

  it('offer: a payout change elsewhere is kept by a rename, and revenue that followed the payout keeps following it', async () => {
    const url = `/v1/offers/${seeded.offer.id}`;
    await Promise.all([patch(a, url, { payout: '4.00' }), patch(b, url, { name: 'Offer Renamed' }), patch(b, url, { dailyCap: 500 })]);
    const [row] = await a.sql`select name, payout_minor, revenue_minor, daily_cap from offers where id = ${seeded.offer.id}`;
    expect(row).toEqual({ name: 'Offer Renamed', payout_minor: 400n, revenue_minor: 400n, daily_cap: 500 });
    const updates = await updatesOf('offer', seeded.offer.id);
    expect(updates).toHaveLength(3);
    expectUnbrokenChain(updates);
  });

  it('a PATCH refused for a bad field changes nothing and records nothing', async () => {
    const url = `/v1/offers/${seeded.offer.id}`;
    const before = await a.sql`select * from offers where id = ${seeded.offer.id}`;
    const audits = (await updatesOf('offer', seeded.offer.id)).length;
    const res = await b.app.inject({ method: 'PATCH', url, headers: auth(), payload: { name: 'Never', payout: '1.234' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'payout' })]);
    expect(await a.sql`select * from offers where id = ${seeded.offer.id}`).toEqual(before);
    expect(await updatesOf('offer', seeded.offer.id)).toHaveLength(audits);
  });
});

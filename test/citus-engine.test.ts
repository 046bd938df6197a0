import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startReceiver, type Receiver } from './helpers/delivery-receiver.js';
import { ADMIN, TEST_TRAFFIC_FRAUD } from './helpers/engine.js';
import { signedGetUrl } from './helpers/postback.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { citusBinOrSkip, startCitusCluster, type CitusCluster } from './helpers/citus.js';

/**
 * The engine on a real Citus cluster: two engine processes on the coordinator of a coordinator and
 * two workers. Every promise that holds on one PostgreSQL holds here: one conversion per txid
 * whichever node gets it, conflicts refused, caps never over-shot, deliveries signed, retried and
 * sent once per webhook-id.
 */

const bin = citusBinOrSkip();
const redisUrl = inject('redisUrl');
const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
const BROWSER = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)' };
const uniqueTx = () => `tx_${randomBytes(6).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cluster: CitusCluster;
let nodes: [EngineProcess, EngineProcess];
let receiver: Receiver;

async function api(path: string, body?: object, node = nodes[0]) {
  const res = await fetch(`${node.url}${path}`, body ? { method: 'POST', headers, body: JSON.stringify(body) } : { headers });
  const json = (await res.json()) as Record<string, any>;
  if (res.status >= 300) throw new Error(`${path} -> ${res.status} ${JSON.stringify(json)}`);
  return json;
}

type Catalog = { advId: string; whsec: string; pubId: string; offerId: string };

/** An advertiser, a publisher posting back to the local receiver, and an offer, seen by both nodes. */
async function catalog(offer: object = {}, publisher: object = {}): Promise<Catalog> {
  const adv = await api('/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 100_000 } });
  const pub = await api('/v1/publishers', { name: 'P', postbackUrl: `${receiver.url}/pb?c={clickid}&tx={txid}`, ...publisher });
  receiver.secret = pub.secret;
  const off = await api('/v1/offers', {
    advertiserId: adv.id, name: 'O', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD', fraud: TEST_TRAFFIC_FRAUD, ...offer,
  });
  const c = { advId: adv.id, whsec: adv.secrets[0].secret, pubId: pub.id, offerId: off.id };
  // Both nodes redirect for the offer once their catalogs have it (polled, within 5 s).
  for (const node of nodes) await click(c, node);
  return c;
}

async function click(c: Catalog, node: EngineProcess): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${node.url}/c/${c.offerId}?pub=${c.pubId}`, { redirect: 'manual', headers: BROWSER });
    if (res.status === 302) return new URL(res.headers.get('location') as string).searchParams.get('cid') as string;
    if (Date.now() > deadline) throw new Error(`no redirect from ${node.url}: ${res.status}`);
    await sleep(100);
  }
}

async function postback(c: Catalog, node: EngineProcess, query: string) {
  const res = await fetch(`${node.url}${signedGetUrl(c.advId, query, c.whsec)}`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe.skipIf(!bin)('the engine on Citus', () => {
  beforeAll(async () => {
    [cluster, receiver] = await Promise.all([startCitusCluster(bin as string, { shardCount: 4 }), startReceiver()]);
    const env = {
      DATABASE_URL: cluster.url,
      ADMIN_TOKEN: ADMIN,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ADDRESS_RATE_LIMIT_PER_S: '1000000',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      DELIVERY_BACKOFF_S: '1',
      PIXEL_GRACE_S: '1',
      // Three PostgreSQL servers share this machine's cores with the engines and the test.
      DB_DEADLINE_MS: '20000',
    };
    // One node migrates and distributes first; the second then finds the schema ready.
    const first = await spawnEngine(env);
    await first.ready(90_000);
    const second = await spawnEngine(env);
    await second.ready(60_000);
    nodes = [first, second];
  }, 180_000);

  afterAll(async () => {
    for (const n of nodes ?? []) n.kill();
    await Promise.all((nodes ?? []).map((n) => n.exited));
    await receiver?.close();
    await cluster?.stop();
  });

  it('the same txid sent to both nodes at once is one conversion; the rest are duplicates of it', async () => {
    const c = await catalog();
    const clickid = await click(c, nodes[1]);
    const txid = uniqueTx();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => postback(c, nodes[i % 2]!, `clickid=${clickid}&txid=${txid}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(60).fill(200));
    expect(new Set(answers.map((a) => a.body.conversionId)).size).toBe(1);
    expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(1);
    const rows = await cluster.sql`select id, advertiser_id from conversions where txid = ${txid}`;
    expect(rows).toEqual([{ id: answers[0]!.body.conversionId, advertiser_id: c.advId }]);
    const history = await cluster.sql`select to_status, advertiser_id from conversion_status_history where conversion_id = ${rows[0]!.id}`;
    expect(history).toEqual([{ to_status: 'approved', advertiser_id: c.advId }]);
  });

  it('a conflicting reuse of a txid is 409 on either node, and the original stands', async () => {
    const c = await catalog();
    const clickid = await click(c, nodes[0]);
    const txid = uniqueTx();
    expect((await postback(c, nodes[0], `clickid=${clickid}&txid=${txid}&payout=2.50`)).status).toBe(200);
    const conflicts = await Promise.all([
      postback(c, nodes[1], `clickid=${clickid}&txid=${txid}&payout=3.00`),
      postback(c, nodes[0], `clickid=${clickid}&txid=${txid}&payout=2.50&currency=EUR`),
    ]);
    for (const res of conflicts) {
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('conflict');
    }
    expect(await cluster.sql`select payout_minor, currency from conversions where txid = ${txid}`).toEqual([{ payout_minor: 250n, currency: 'USD' }]);
  });

  it('400 distinct txids over both nodes are exactly 400 conversions, on the shards of their advertisers', async () => {
    const advertisers = await Promise.all([catalog(), catalog(), catalog(), catalog()]);
    const clicks = await Promise.all(advertisers.map((c) => click(c, nodes[0])));
    const txids = Array.from({ length: 400 }, uniqueTx);
    const answers = await Promise.all(
      txids.map((txid, i) => postback(advertisers[i % 4]!, nodes[i % 2]!, `clickid=${clicks[i % 4]}&txid=${txid}`)),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const [row] = await cluster.sql`select count(*)::int as n from conversions where txid = any(${txids})`;
    expect(row?.n).toBe(400);
    // Each advertiser's conversions sit in the shard that owns it, on the worker that holds that shard.
    for (const [n, a] of advertisers.entries()) {
      const [shard] = await cluster.sql<{ name: string; port: number }[]>`
        select shard_name::text as name, nodeport as port from citus_shards
        where table_name = 'conversions'::regclass and shardid = get_shard_id_for_distribution_column('conversions', ${a.advId}::text)`;
      const worker = cluster.worker(cluster.workerPorts.indexOf(shard!.port));
      const [held] = await worker.unsafe(`select count(*)::int as n from ${shard!.name} where txid = any($1::text[])`, [txids.filter((_, i) => i % 4 === n)]);
      expect(held?.n).toBe(100);
    }
  }, 60_000);

  it('a daily cap of 10 holds against 40 concurrent postbacks over both nodes', async () => {
    const c = await catalog({ caps: [{ period: 'day', conversions: 10 }] });
    const clicks = await Promise.all(Array.from({ length: 40 }, (_, i) => click(c, nodes[i % 2]!)));
    const answers = await Promise.all(clicks.map((clk, i) => postback(c, nodes[i % 2]!, `clickid=${clk}&txid=${uniqueTx()}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    expect(answers.filter((a) => a.body.decision === 'accepted')).toHaveLength(10);
    expect(answers.filter((a) => a.body.decision === 'rejected' && a.body.reasons.includes('over_cap'))).toHaveLength(30);
    // Deliveries and conversions are sharded by different keys: counted apart, matched here.
    const conversions = await cluster.sql<{ id: string; decision: string }[]>`select id, decision from conversions where offer_id = ${c.offerId}`;
    const queued = await cluster.sql<{ conversion_id: string; n: number }[]>`
      select conversion_id, count(*)::int as n from deliveries where publisher_id = ${c.pubId} group by conversion_id`;
    const deliveriesOf = new Map(queued.map((q) => [q.conversion_id, q.n]));
    const rows = conversions.map((r) => ({ decision: r.decision, deliveries: deliveriesOf.get(r.id) ?? 0 }));
    expect(rows.filter((r) => r.decision === 'accepted' && r.deliveries === 1)).toHaveLength(10);
    expect(rows.filter((r) => r.decision === 'rejected' && r.deliveries === 0)).toHaveLength(30);
    expect(await cluster.sql`select conversions from offer_cap_usage where offer_id = ${c.offerId}`).toEqual([{ conversions: 10n }]);
  }, 60_000);

  it('delivers each conversion to the publisher signed, retried after a failure, once per webhook-id', async () => {
    const c = await catalog();
    const failedOnce = new Set<string>();
    receiver.handler = (req) => {
      if (!req.url.startsWith('/pb?')) return { status: 404 };
      if (failedOnce.has(req.webhookId)) return { status: 200, body: 'ok' };
      failedOnce.add(req.webhookId);
      // A 4xx, not a 5xx: ten 5xx answers split five and five would open both nodes' circuit
      // breakers (5 failures) for 30 s, which is the breaker's test, not this one's.
      return { status: 400, body: 'not yet' };
    };
    const clicks = await Promise.all(Array.from({ length: 10 }, (_, i) => click(c, nodes[i % 2]!)));
    const txids = clicks.map(() => uniqueTx());
    const answers = await Promise.all(clicks.map((clk, i) => postback(c, nodes[i % 2]!, `clickid=${clk}&txid=${txids[i]}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    const mine = () => receiver.received.filter((r) => txids.some((t) => r.url.includes(`tx=${t}`)));
    await receiver.waitFor(() => new Set(mine().filter((r) => failedOnce.has(r.webhookId)).map((r) => r.webhookId)).size === 10 && mine().length >= 20, 30_000);
    // Both nodes' workers polled: give a late duplicate the chance to show before counting.
    await sleep(1500);
    const got = mine();
    expect(got.every((r) => r.signatureError === undefined)).toBe(true);
    const perId = new Map<string, number>();
    for (const r of got) perId.set(r.webhookId, (perId.get(r.webhookId) ?? 0) + 1);
    expect([...perId.values()]).toEqual(Array(10).fill(2)); // one failure, one success, never a third
    const rows = await cluster.sql<{ state: string; attempts: number; tries: number }[]>`
      select d.state, d.attempts, (select count(*)::int from delivery_attempts a where a.delivery_id = d.id and a.publisher_id = d.publisher_id) as tries
      from deliveries d where d.publisher_id = ${c.pubId}`;
    expect(rows).toEqual(Array(10).fill({ state: 'delivered', attempts: 2, tries: 2 }));
    receiver.handler = () => ({ status: 200, body: 'ok' });

    // The read API joins deliveries (by publisher) with conversions (by advertiser) across shard keys.
    const listed = await api(`/v1/deliveries?publisherId=${c.pubId}&limit=50`, undefined, nodes[1]);
    expect(listed.items).toHaveLength(10);
    expect(listed.items.every((d: { state: string }) => d.state === 'delivered')).toBe(true);
    const detail = await api(`/v1/conversions/${answers[0]!.body.conversionId}`, undefined, nodes[0]);
    expect(detail.click.recorded).toBe(true);
    expect(detail.statusHistory).toHaveLength(1);
  }, 60_000);
  it('reconciles two advertisers, each read on its own shard: matched, S2S-only and pixel-only units, recovery, re-fire and expiry; a second run changes nothing', async () => {
    const from = new Date(Date.now() - 60_000);
    // a's publisher refuses connections, so a's deliveries stay open; b's are delivered.
    const a = await catalog({}, { postbackUrl: 'http://127.0.0.1:9/pb?c={clickid}' });
    const b = await catalog();
    const txids = new Map<string, Record<'matched' | 's2sOnly' | 'pixelOnly' | 'refused', string>>();
    for (const c of [a, b]) {
      const t = { matched: uniqueTx(), s2sOnly: uniqueTx(), pixelOnly: uniqueTx(), refused: uniqueTx() };
      txids.set(c.advId, t);
      const [k1, k2, k3, k4] = await Promise.all([click(c, nodes[0]), click(c, nodes[1]), click(c, nodes[0]), click(c, nodes[1])]);
      const pixel = (clickid: string, txid: string, node: EngineProcess) => fetch(`${node.url}/pixel.gif?clickid=${clickid}&txid=${encodeURIComponent(txid)}`);
      expect((await Promise.all([pixel(k1 as string, t.matched, nodes[0]), pixel(k3 as string, t.pixelOnly, nodes[1]), pixel(k4 as string, t.refused, nodes[0])])).map((r) => r.status)).toEqual([200, 200, 200]);
      expect((await postback(c, nodes[1], `clickid=${k1}&txid=${t.matched}`)).status).toBe(200);
      expect((await postback(c, nodes[0], `clickid=${k2}&txid=${t.s2sOnly}`)).status).toBe(200);
      const forged = await fetch(`${nodes[1].url}${signedGetUrl(c.advId, `clickid=${k4}&txid=${t.refused}`, `whsec_${randomBytes(24).toString('base64')}`)}`);
      expect(forged.status).toBe(401);
    }
    // a's two deliveries: one waiting on a long backoff (re-fired), one past its deadline (expired).
    const [waiting, overdue] = [txids.get(a.advId)?.matched, txids.get(a.advId)?.s2sOnly] as [string, string];
    const deliveryOf = async (txid: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        // Deliveries and conversions are sharded by different keys: looked up one after the other.
        const [c] = await cluster.sql<{ id: string }[]>`select id from conversions where txid = ${txid}`;
        const [d] = c ? await cluster.sql<{ id: string }[]>`select id from deliveries where conversion_id = ${c.id} and attempts >= 1 and lease_until is null` : [];
        if (d) return d.id;
        if (Date.now() > deadline) throw new Error(`no attempted delivery for ${txid}`);
        await sleep(100);
      }
    };
    const [waitingId, overdueId] = await Promise.all([deliveryOf(waiting), deliveryOf(overdue)]);
    await cluster.sql`update deliveries set next_attempt_at = now() + interval '1 hour' where id = ${waitingId}`;
    await cluster.sql`update deliveries set deadline_at = now() - interval '1 second', next_attempt_at = now() - interval '1 second' where id = ${overdueId}`;
    await sleep(1500); // PIXEL_GRACE_S is 1

    const window = { from: from.toISOString(), to: new Date(Date.now() + 1000).toISOString() };
    const totals = (run: Record<string, any>, offerId: string) => {
      const sum: Record<string, number> = { s2s: 0, pixel: 0, matched: 0, s2sOnly: 0, pixelOnly: 0, recovered: 0, refired: 0, expired: 0 };
      for (const row of run.rows.filter((r: { offerId: string }) => r.offerId === offerId)) for (const k of Object.keys(sum)) sum[k] = (sum[k] ?? 0) + row[k];
      return sum;
    };
    const first = await api('/v1/reconciliations', window);
    const units = { s2s: 2, pixel: 3, matched: 1, s2sOnly: 1, pixelOnly: 2 };
    expect(totals(first, a.offerId)).toEqual({ ...units, recovered: 2, refired: 1, expired: 1 });
    expect(totals(first, b.offerId)).toEqual({ ...units, recovered: 2, refired: 0, expired: 0 });

    for (const c of [a, b]) {
      const t = txids.get(c.advId) as { pixelOnly: string; refused: string };
      const recovered = await cluster.sql`
        select txid, decision, reasons, source, advertiser_id from conversions where txid = any(${[t.pixelOnly, t.refused]}) order by txid`;
      expect(recovered).toEqual(
        [t.pixelOnly, t.refused].sort().map((txid) => ({ txid, decision: 'flagged', reasons: ['s2s_missing'], source: 'pixel', advertiser_id: c.advId })),
      );
      const causes = await api(`/v1/reconciliations/${first.id}/root-causes?limit=100`);
      const mine = causes.items.filter((i: { advertiserId: string }) => i.advertiserId === c.advId);
      expect(Object.fromEntries(mine.map((i: { txid: string; cause: string; recovered: boolean }) => [i.txid, [i.cause, i.recovered]]))).toEqual({
        [t.pixelOnly]: ['never_attempted', true],
        [t.refused]: ['signature', true],
      });
    }
    const [refired] = await cluster.sql`select next_attempt_at <= now() + interval '1 minute' as due, refired_at is not null as refired from deliveries where id = ${waitingId}`;
    expect(refired).toEqual({ due: true, refired: true });
    expect(await cluster.sql`select state from deliveries where id = ${overdueId}`).toEqual([{ state: 'expired' }]);

    const second = await api('/v1/reconciliations', window);
    for (const c of [a, b]) expect(totals(second, c.offerId)).toEqual({ ...units, recovered: 0, refired: 0, expired: 0 });
    const [pixelConversions] = await cluster.sql`select count(*)::int as n from conversions where source = 'pixel' and advertiser_id = any(${[a.advId, b.advId]})`;
    expect(pixelConversions?.n).toBe(4);
  }, 90_000);
});

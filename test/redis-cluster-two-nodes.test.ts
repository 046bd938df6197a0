import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from './helpers/admin.js';
import { freshDatabase } from './helpers/db.js';
import { ADMIN } from './helpers/engine.js';
import { signedGetUrl, uniqueTx, webhookHeaders } from './helpers/postback.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { freshAddress } from './helpers/review.js';

/**
 * Two real engine processes on one PostgreSQL and a three-master Redis Cluster (REDIS_CLUSTER=true,
 * REDIS_URL the seed nodes): rate limits, the replay and result caches and the fraud counters are
 * counted across both nodes as on one Redis, and a catalog change on one node reaches the other.
 */

const clusterUrl = inject('redisClusterUrl');
const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
const BROWSER = 'Mozilla/5.0 (Linux; Android 14; Pixel 8)';

type Advertiser = { id: string; secrets: { secret: string }[] };
let db: Awaited<ReturnType<typeof freshDatabase>>;
let nodes: [EngineProcess, EngineProcess];
let adv: Advertiser;
let pub: { id: string };
let offer: { id: string };

async function api(node: EngineProcess, method: string, path: string, body?: object) {
  const res = await fetch(`${node.url}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (res.status >= 300) throw new Error(`${method} ${path} -> ${res.status} ${await res.text()}`);
  return res.json() as Promise<Record<string, any>>;
}

/** A click through `node`'s /c from `ip` (the engine believes X-Forwarded-For from 127.0.0.1 here). */
async function click(node: EngineProcess, ip: string, offerId = offer.id): Promise<string> {
  const res = await fetch(`${node.url}/c/${offerId}?pub=${pub.id}`, { redirect: 'manual', headers: { 'x-forwarded-for': ip, 'user-agent': BROWSER } });
  if (res.status !== 302) throw new Error(`click -> ${res.status} ${await res.text()}`);
  return new URL(res.headers.get('location') as string).searchParams.get('cid') as string;
}

const secret = (a: Advertiser) => (a.secrets[0] as { secret: string }).secret;
const getPostback = (node: EngineProcess, a: Advertiser, query: string) => fetch(`${node.url}${signedGetUrl(a.id, query, secret(a))}`);
const conversions = async (txid: string) => (await db.sql<{ n: number }[]>`select count(*)::int as n from conversions where txid = ${txid}`)[0]?.n;

describe.skipIf(!clusterUrl)('two engine processes on a Redis Cluster', () => {
  beforeAll(async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, REDIS_URL: clusterUrl ?? '', REDIS_CLUSTER: 'true', ADMIN_TOKEN: ADMIN, TRUST_PROXY: '127.0.0.1', ADDRESS_RATE_LIMIT_PER_S: '100000' };
    nodes = (await Promise.all([spawnEngine(env), spawnEngine(env)])) as [EngineProcess, EngineProcess];
    await Promise.all(nodes.map((n) => n.ready()));
    adv = (await api(nodes[0], 'POST', '/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 100_000 } })) as Advertiser;
    pub = (await api(nodes[0], 'POST', '/v1/publishers', { name: 'P', postbackUrl: 'https://pub.example/pb?c={clickid}' })) as typeof pub;
    // Timing off: these postbacks follow their clicks at once, which is not what is under test.
    offer = (await api(nodes[0], 'POST', '/v1/offers', {
      advertiserId: adv.id,
      name: 'O',
      url: 'https://adv.example/?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
      fraud: { rules: { ctit_too_short: { mode: 'off' }, multiple_conversions_per_click: { mode: 'monitor' } } },
    })) as typeof offer;
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes ?? []) n.kill();
    await Promise.all((nodes ?? []).map((n) => n.exited));
    await db?.drop();
  });

  it('starts with the cluster and says so on neither node as a problem', () => {
    for (const n of nodes) expect(n.output()).not.toMatch(/not ready|redis error|CROSSSLOT/i);
  });

  it('100 identical postbacks split across both nodes make one conversion; the retries are answered as duplicates', async () => {
    const clickid = await click(nodes[1], freshAddress());
    const txid = uniqueTx();
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => getPostback(nodes[i % 2] as EngineProcess, adv, `clickid=${clickid}&txid=${txid}`)));
    const bodies = await Promise.all(answers.map((r) => r.json() as Promise<{ conversionId: string; duplicate: boolean }>));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(new Set(bodies.map((b) => b.conversionId)).size).toBe(1);
    expect(bodies.filter((b) => !b.duplicate)).toHaveLength(1);
    expect(await conversions(txid)).toBe(1);
  });

  it('a webhook-id used on one node is refused on the other with different content, and nothing is recorded for it', async () => {
    const id = `msg_${randomBytes(8).toString('hex')}`;
    const post = async (node: EngineProcess, txid: string) => {
      const body = JSON.stringify({ clickid: await click(node, freshAddress()), txid });
      return fetch(`${node.url}/postback/${adv.id}`, { method: 'POST', headers: webhookHeaders(secret(adv), body, { id }), body });
    };
    const [firstTx, secondTx] = [uniqueTx(), uniqueTx()];
    expect((await post(nodes[0], firstTx)).status).toBe(200);
    const reuse = await post(nodes[1], secondTx);
    expect(reuse.status).toBe(409);
    expect([await conversions(firstTx), await conversions(secondTx)]).toEqual([1, 0]);
  });

  it("an advertiser's rate limit set on one node is counted across both: 12 postbacks at once, 4 accepted", async () => {
    const limited = (await api(nodes[0], 'POST', '/v1/advertisers', { name: 'Limited', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 4 } })) as Advertiser;
    const limitedOffer = await api(nodes[0], 'POST', '/v1/offers', { advertiserId: limited.id, name: 'L', url: 'https://adv.example/?cid={clickid}', payout: '1.00', currency: 'USD' });
    const clicks = await Promise.all(Array.from({ length: 12 }, (_, i) => click(nodes[i % 2] as EngineProcess, freshAddress(), limitedOffer.id)));
    const answers = await Promise.all(clicks.map((c, i) => getPostback(nodes[i % 2] as EngineProcess, limited, `clickid=${c}&txid=${uniqueTx()}`)));
    const statuses = answers.map((r) => r.status);
    // Each node alone would allow 4 (its insurance limiter if the cluster failed): 8 would pass.
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8);
    expect(answers.find((r) => r.status === 429)?.headers.get('retry-after')).toBe('1');
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from conversions where advertiser_id = ${limited.id}`;
    expect(row?.n).toBe(4);
  });

  it('the sixth conversion from one address is flagged ip_burst although each node saw only three', async () => {
    const ip = freshAddress();
    const answers: { conversionId: string; decision: string; reasons: string[] }[] = [];
    for (let i = 0; i < 6; i++) {
      const node = nodes[i % 2] as EngineProcess;
      const res = await getPostback(node, adv, `clickid=${await click(node, ip)}&txid=${uniqueTx()}`);
      expect(res.status).toBe(200);
      answers.push((await res.json()) as (typeof answers)[number]);
    }
    expect(answers.map((a) => a.decision)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'flagged']);
    expect(answers[5]?.reasons).toEqual(['ip_burst']);
    const detail = await api(nodes[1], 'GET', `/v1/conversions/${answers[5]?.conversionId}`);
    expect(detail.evidence.find((e: { code: string }) => e.code === 'ip_burst')).toMatchObject({ evaluated: true, fired: true, value: 6, threshold: 5 });
    const [row] = await db.sql<{ decision: string }[]>`select decision from conversions where id = ${answers[5]?.conversionId as string}`;
    expect(row?.decision).toBe('flagged');
  });

  it("an offer's new payout set on one node is paid on the other", async () => {
    await api(nodes[0], 'PATCH', `/v1/offers/${offer.id}`, { payout: '3.75' });
    const paid = await eventually(
      async () => {
        const txid = uniqueTx();
        const res = await getPostback(nodes[1], adv, `clickid=${await click(nodes[1], freshAddress())}&txid=${txid}`);
        expect(res.status).toBe(200);
        return (await db.sql<{ payout_minor: string }[]>`select payout_minor::text from conversions where txid = ${txid}`)[0]?.payout_minor;
      },
      (payout) => payout === '375',
      { timeoutMs: 5000, intervalMs: 200 },
    );
    expect(paid).toBe('375');
  });
});
